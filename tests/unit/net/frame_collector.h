// FrameCollector: registers as a net::Backend's receiver, keeps every frame (with its offload header) the backend
// delivers on its own thread, and lets a test wait (bounded: liveness, not timing) for one that matches.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "net/backend.h"

namespace hako::net::test {

struct ReceivedFrame {
    VnetHeader header;
    std::vector<uint8_t> frame; // empty: nothing matched in time
};

class FrameCollector {
public:
    static constexpr auto LIVENESS_BOUND = std::chrono::seconds(10);

    explicit FrameCollector(Backend& b)
    {
        b.set_offload_receiver([this](VnetHeader const& h, std::span<uint8_t const> frame) {
            std::lock_guard lock(m_lock);
            m_frames.push_back(ReceivedFrame { h, std::vector<uint8_t>(frame.begin(), frame.end()) });
            m_cv.notify_all();
            return true;
        });
    }
    /// Waits for a frame that `match(frame bytes)` accepts.
    template<typename Match>
    ReceivedFrame wait_for(Match match)
    {
        std::unique_lock lock(m_lock);
        ReceivedFrame found;
        m_cv.wait_for(lock, LIVENESS_BOUND, [&] {
            for (auto const& r : m_frames)
                if (match(r.frame)) {
                    found = r;
                    return true;
                }
            return false;
        });
        return found;
    }

private:
    std::mutex m_lock;
    std::condition_variable m_cv;
    std::vector<ReceivedFrame> m_frames;
};

} // namespace hako::net::test
