// VirtioPciDevice, continued: the legacy (virtio 0.9.5) header in the I/O BAR 0 of a transitional device (VIRTIO
// 1.2 4.1.4.10 and the "Legacy Interface" notes of 4.1.5.1, 2.7). The register map, the rules and what is not done
// are in the file comment of virtio_pci.h; the shared state, locking and the modern interface are in virtio_pci.cpp.
#include <algorithm>
#include <array>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"
#include "devices/virtio/virtio_pci.h"

namespace hako::devices::virtio {

void VirtioPciDevice::read_legacy(uint64_t offset, std::span<uint8_t> data, ReadMode mode)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    size_t const size = data.size();
    auto report_bad = [&](std::string_view what) {
        if (mode == ReadMode::Guest)
            bad_access(what, offset, size);
    };
    if (size != 1 && size != 2 && size != 4) {
        report_bad("legacy read");
        return;
    }
    uint64_t const config_off = virtio_pci_config_off(m_msix->enabled());
    if (offset >= config_off) {
        uint64_t const rel = offset - config_off;
        if (!range_within(rel, size, m_config_size)) {
            report_bad("legacy device config read");
            return;
        }
        m_device->read_config(static_cast<uint32_t>(rel), data);
        return;
    }
    if (offset == VIRTIO_PCI_ISR) {
        if (size != 1) {
            report_bad("legacy ISR read");
            return;
        }
        data[0] = read_isr(mode);
        return;
    }
    std::optional<uint64_t> value;
    {
        std::lock_guard lock(m_control_lock);
        // Natural width only: each register is read at its own offset with its own size.
        struct Reg {
            uint16_t offset;
            uint8_t width;
        };
        static constexpr std::array<Reg, 8> REGS { {
            { VIRTIO_PCI_HOST_FEATURES, 4 }, { VIRTIO_PCI_GUEST_FEATURES, 4 }, { VIRTIO_PCI_QUEUE_PFN, 4 },
            { VIRTIO_PCI_QUEUE_NUM, 2 }, { VIRTIO_PCI_QUEUE_SEL, 2 }, { VIRTIO_PCI_STATUS, 1 },
            { VIRTIO_MSI_CONFIG_VECTOR, 2 }, { VIRTIO_MSI_QUEUE_VECTOR, 2 },
        } };
        bool const good = std::any_of(REGS.begin(), REGS.end(), [&](Reg const& r) { return r.offset == offset && r.width == size; });
        if (!good) {
            report_bad("legacy header read");
            return;
        }
        if (mode == ReadMode::Guest) {
            bool const decides = offset <= VIRTIO_PCI_GUEST_FEATURES || offset == VIRTIO_PCI_STATUS;
            if (!claim_interface_locked(DriverInterface::Legacy, decides, offset))
                return; // all-ones
        }
        value = read_legacy_header_locked(offset);
    }
    if (!value) {
        report_bad("legacy header read");
        return;
    }
    store_le(data, *value);
}

std::optional<uint64_t> VirtioPciDevice::read_legacy_header_locked(uint64_t offset)
{
    uint16_t const q = m_queue_select;
    bool const valid_q = q < m_num_queues;
    switch (offset) {
    case VIRTIO_PCI_HOST_FEATURES: return m_offered_features & 0xffffffff; // legacy never sees VERSION_1
    case VIRTIO_PCI_GUEST_FEATURES: return m_driver_features & 0xffffffff;
    case VIRTIO_PCI_QUEUE_PFN: return valid_q ? m_queue_state[q].pfn : 0;
    case VIRTIO_PCI_QUEUE_NUM: return valid_q ? m_queues[q].max_size() : 0; // 0: no such queue (drivers stop there)
    case VIRTIO_PCI_QUEUE_SEL: return q;
    case VIRTIO_PCI_STATUS: {
        std::lock_guard irq(m_irq_lock);
        return static_cast<uint8_t>(m_status | (m_needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
    }
    case VIRTIO_MSI_CONFIG_VECTOR: {
        std::lock_guard irq(m_irq_lock);
        return m_config_vector;
    }
    case VIRTIO_MSI_QUEUE_VECTOR: {
        std::lock_guard irq(m_irq_lock);
        return valid_q ? m_queue_vectors[q] : VIRTIO_MSI_NO_VECTOR;
    }
    default: return std::nullopt;
    }
}

void VirtioPciDevice::write_legacy(uint64_t offset, std::span<uint8_t const> data)
{
    size_t const size = data.size();
    if (size != 1 && size != 2 && size != 4) {
        bad_access("legacy write", offset, size);
        return;
    }
    uint64_t const config_off = virtio_pci_config_off(m_msix->enabled());
    if (offset >= config_off) {
        uint64_t const rel = offset - config_off;
        if (!range_within(rel, size, m_config_size)) {
            bad_access("legacy device config write", offset, size);
            return;
        }
        m_device->write_config(static_cast<uint32_t>(rel), data);
        return;
    }
    uint64_t const value = load_le(data);
    if (offset == VIRTIO_PCI_QUEUE_NOTIFY) {
        if (size != 2) {
            bad_access("legacy notify write", offset, size);
            return;
        }
        process_notify(static_cast<uint16_t>(value)); // the value is the queue index
        return;
    }
    struct Reg {
        uint16_t offset;
        uint8_t width;
    };
    static constexpr std::array<Reg, 9> REGS { {
        { VIRTIO_PCI_HOST_FEATURES, 4 }, { VIRTIO_PCI_GUEST_FEATURES, 4 }, { VIRTIO_PCI_QUEUE_PFN, 4 },
        { VIRTIO_PCI_QUEUE_NUM, 2 }, { VIRTIO_PCI_QUEUE_SEL, 2 }, { VIRTIO_PCI_STATUS, 1 }, { VIRTIO_PCI_ISR, 1 },
        { VIRTIO_MSI_CONFIG_VECTOR, 2 }, { VIRTIO_MSI_QUEUE_VECTOR, 2 },
    } };
    bool const good = std::any_of(REGS.begin(), REGS.end(), [&](Reg const& r) { return r.offset == offset && r.width == size; });
    if (!good) {
        bad_access("legacy header write", offset, size);
        return;
    }
    if (offset == VIRTIO_PCI_ISR) {
        bad_access("legacy ISR write", offset, size);
        return;
    }
    std::lock_guard lock(m_control_lock);
    if (offset == VIRTIO_PCI_STATUS && value == 0) { // a reset works through either interface
        write_status_locked(0, DriverInterface::Legacy);
        return;
    }
    bool const decides = offset <= VIRTIO_PCI_GUEST_FEATURES || offset == VIRTIO_PCI_STATUS;
    if (!claim_interface_locked(DriverInterface::Legacy, decides, offset))
        return;
    write_legacy_header_locked(offset, value);
}

void VirtioPciDevice::write_legacy_header_locked(uint64_t offset, uint64_t value)
{
    uint16_t const q = m_queue_select;
    switch (offset) {
    case VIRTIO_PCI_GUEST_FEATURES: {
        if (m_status & VIRTIO_CONFIG_S_DRIVER_OK) {
            rejected("legacy guest features after DRIVER_OK", offset, value, DriverInterface::Legacy);
            return;
        }
        uint64_t const offered = m_offered_features & 0xffffffff;
        if (uint64_t const unknown = value & ~offered; unknown != 0) {
            m_features_refused.fetch_add(1, std::memory_order_relaxed);
            HAKO_WARN_RATELIMITED("{}: legacy guest features {:#x}: bits {:#x} not offered, dropped", m_name, value, unknown);
        }
        m_driver_features = value & offered;
        return;
    }
    case VIRTIO_PCI_QUEUE_PFN:
        write_legacy_pfn_locked(static_cast<uint32_t>(value));
        return;
    case VIRTIO_PCI_QUEUE_SEL:
        m_queue_select = static_cast<uint16_t>(value);
        return;
    case VIRTIO_PCI_STATUS:
        write_status_locked(static_cast<uint8_t>(value), DriverInterface::Legacy);
        return;
    case VIRTIO_MSI_CONFIG_VECTOR: {
        if (!m_msix->enabled()) // the register exists only while MSI-X is on (else it is device config)
            return;
        std::lock_guard irq(m_irq_lock);
        auto const v = static_cast<uint16_t>(value);
        m_config_vector = v < m_num_queues + 1 ? v : VIRTIO_MSI_NO_VECTOR;
        return;
    }
    case VIRTIO_MSI_QUEUE_VECTOR: {
        if (q >= m_num_queues) {
            rejected("no such queue selected", offset, value, DriverInterface::Legacy);
            return;
        }
        std::lock_guard irq(m_irq_lock);
        auto const v = static_cast<uint16_t>(value);
        m_queue_vectors[q] = v < m_num_queues + 1 ? v : VIRTIO_MSI_NO_VECTOR;
        return;
    }
    default: // VIRTIO_PCI_HOST_FEATURES, VIRTIO_PCI_QUEUE_NUM
        rejected("read-only legacy register", offset, value, DriverInterface::Legacy);
        return;
    }
}

void VirtioPciDevice::write_legacy_pfn_locked(uint32_t pfn)
{
    uint16_t const q = m_queue_select;
    if (q >= m_num_queues) {
        rejected("no such queue selected", VIRTIO_PCI_QUEUE_PFN, pfn, DriverInterface::Legacy);
        return;
    }
    if (m_status & VIRTIO_CONFIG_S_DRIVER_OK) {
        // From activate() until reset() the device owns the queues.
        rejected("legacy queue address after DRIVER_OK", VIRTIO_PCI_QUEUE_PFN, pfn, DriverInterface::Legacy);
        return;
    }
    QueueState& qs = m_queue_state[q];
    Queue& queue = m_queues[q];
    uint16_t const n = queue.max_size(); // legacy cannot choose the size
    qs = QueueState {};
    qs.size = n;
    queue.set_ready(false);
    if (pfn == 0) // 4.1.4.10 notes: writing 0 disables the queue
        return;
    // 2.7 "Legacy Interfaces: A Note on Virtqueue Layout": descriptors, the available ring (with used_event) right
    // after them, the used ring at the next 4096-byte boundary. pfn < 2^32, so none of this overflows.
    qs.pfn = pfn;
    qs.desc = uint64_t { pfn } << VIRTIO_PCI_QUEUE_ADDR_SHIFT;
    qs.driver = qs.desc + virtq_desc_table_size(n);
    qs.device = align_up(qs.driver + virtq_avail_ring_size(n), VIRTIO_PCI_VRING_ALIGN);
    enable_queue_locked(q);
}

} // namespace hako::devices::virtio
