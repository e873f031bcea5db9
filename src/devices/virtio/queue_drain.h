// drain_queue(): the request loop every virtio device runs on a notify (VIRTIO 1.2 section 2.7.10 and 2.7.13:
// suppress notifications while working, re-enable them and look again before stopping, so a buffer added in
// between is never left waiting).
//
// The work is bounded by `budget` chains: a driver that keeps adding buffers from another vCPU cannot keep the
// device thread spinning. What is left must not wait for the driver's next notify (with EVENT_IDX the driver is
// already past the avail_event set here and will not send one): on budget_exhausted the device calls
// VirtioInterrupt::requeue_notify() to be run again from its event loop. Chains the
// Queue rejects are given back with length 0 (if their head is in range) and counted.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>

#include "devices/virtio/queue.h"

namespace hako::devices::virtio {

struct DrainOutcome {
    bool used { false };             // add_used() was called: ask should_notify()
    bool broken { false };           // the queue is broken: the device needs reset
    bool budget_exhausted { false }; // stopped at the budget with buffers possibly left
    uint32_t served { 0 };           // chains given to `serve`
    uint32_t bad_chains { 0 };       // chains the Queue rejected
};

/// Pops and serves up to `budget` chains. `serve(DescriptorChain&)` handles one request and returns the used
/// length (bytes it wrote into the chain); drain_queue() puts the chain in the used ring. A `serve` that returns
/// std::optional<uint32_t> may return nullopt to keep the chain (it moved it away to complete it later).
template<typename Serve>
DrainOutcome drain_queue(Queue& queue, uint32_t budget, Serve&& serve)
{
    DrainOutcome out;
    for (;;) {
        queue.disable_notification();
        while (budget > 0) {
            auto r = queue.pop();
            if (r.status() == PopResult::Status::Empty)
                break;
            if (r.status() == PopResult::Status::Broken) {
                out.broken = true;
                return out;
            }
            --budget;
            if (r.status() == PopResult::Status::Bad) {
                ++out.bad_chains;
                if (r.head() < queue.size()) {
                    queue.add_used(r.head(), 0);
                    out.used = true;
                }
                continue;
            }
            uint16_t const head = r.chain().head();
            auto const len = serve(r.chain());
            ++out.served;
            if constexpr (std::is_same_v<std::decay_t<decltype(len)>, std::optional<uint32_t>>) {
                if (!len)
                    continue; // kept by the device
                queue.add_used(head, *len);
            } else {
                queue.add_used(head, len);
            }
            out.used = true;
        }
        if (budget == 0) {
            out.budget_exhausted = true;
            queue.enable_notification(); // the caller requeues the rest (budget_exhausted)
            break;
        }
        if (!queue.enable_notification())
            break;
    }
    out.broken = out.broken || queue.error().has_value();
    return out;
}

} // namespace hako::devices::virtio
