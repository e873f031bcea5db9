// A VirtioDevice under fuzz: guest RAM (64 KiB at 0x10000) seeded from the input, the device's queues configured at
// input-chosen sizes, ring addresses and ring features, and the device activated. Shared by the per-device fuzz
// targets, which then run their own operations (notifies, host-side calls, config accesses, RAM writes, resets).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "devices/virtio/virtio_device.h"
#include "memory/guest_memory.h"

namespace hako::fuzz {

inline void check(bool ok)
{
    if (!ok)
        std::abort();
}

struct CountingInterrupt final : devices::virtio::VirtioInterrupt {
    explicit CountingInterrupt(uint16_t queues) : m_queues(queues) { }
    void signal_used_queue(uint16_t q) override
    {
        check(q < m_queues);
        ++used;
    }
    void signal_config_change() override { ++config; }
    void signal_needs_reset() override { ++needs_reset; }
    uint16_t m_queues;
    uint64_t used { 0 }, config { 0 }, needs_reset { 0 };
};

class VirtioHarness {
public:
    static constexpr uint64_t RAM_BASE = 0x10000;
    static constexpr size_t RAM_SIZE = 0x10000;
    /// Bytes of input the harness consumes: 4 (ring base, ring features, seed length, spare) + 1 per queue (size).
    static constexpr size_t HEADER = 4 + 8;

    /// Guest RAM from the start of the input. \return the offset of the first unconsumed byte, or nullopt if the
    /// input is too short.
    std::optional<size_t> init_memory(uint8_t const* data, size_t size)
    {
        if (size < HEADER)
            return std::nullopt;
        m_header.assign(data, data + HEADER);
        static std::vector<uint8_t> ram(RAM_SIZE);
        std::fill(ram.begin(), ram.end(), 0);
        m_ram = &ram;
        size_t const seed = std::min<size_t>(size_t { data[2] } * 128, size - HEADER);
        std::memcpy(ram.data(), data + HEADER, std::min(seed, RAM_SIZE));
        auto mem = memory::GuestMemory::from_buffers({ { memory::GuestAddr(RAM_BASE), std::span<uint8_t>(ram) } });
        if (!mem)
            return std::nullopt;
        m_mem.emplace(std::move(*mem));
        return HEADER + seed;
    }

    /// Configures the device's queues from the header and activates it with `features`.
    void activate(devices::virtio::VirtioDevice& device, uint64_t features)
    {
        uint16_t const n = std::min<uint16_t>(device.num_queues(), 8);
        m_queues.clear();
        for (uint16_t i = 0; i < n; ++i) {
            auto q = devices::virtio::Queue::create(*m_mem, device.max_queue_size(i));
            check(q.has_value());
            m_queues.push_back(std::move(*q));
            auto& qq = m_queues.back();
            (void)qq.set_size(static_cast<uint16_t>(1u << (m_header[4 + i] % 9)));
            uint64_t const base = RAM_BASE + (uint64_t { m_header[0] } << 8) % RAM_SIZE + i * 0x1000u;
            qq.set_desc_table(memory::GuestAddr(base));
            qq.set_avail_ring(memory::GuestAddr(base + 0x800));
            qq.set_used_ring(memory::GuestAddr(base + 0xc00));
            qq.set_negotiated_features(uint64_t { m_header[1] & 3u } << devices::virtio::VIRTIO_F_INDIRECT_DESC);
            if (qq.validate())
                qq.set_ready(true);
        }
        m_irq.emplace(n);
        m_context.features = features;
        m_context.queues = m_queues;
        m_context.interrupt = &*m_irq;
        check(device.activate(m_context).has_value());
    }

    /// Re-activates after a reset (the queues are the transport's: reset them as it would).
    void reactivate(devices::virtio::VirtioDevice& device)
    {
        check(device.activate(m_context).has_value());
    }
    void poke(uint8_t a, uint8_t b, uint8_t value) { (*m_ram)[(size_t { a } << 8 | b) % RAM_SIZE] = value; }
    memory::GuestMemory const& mem() const { return *m_mem; }

private:
    std::vector<uint8_t> m_header;
    std::vector<uint8_t>* m_ram { nullptr };
    std::optional<memory::GuestMemory> m_mem;
    std::vector<devices::virtio::Queue> m_queues;
    std::optional<CountingInterrupt> m_irq;
    devices::virtio::ActivateContext m_context;
};

} // namespace hako::fuzz
