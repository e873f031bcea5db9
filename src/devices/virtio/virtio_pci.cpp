#include "devices/virtio/virtio_pci.h"

#include <algorithm>
#include <array>
#include <bit>

#include "base/bytes.h"
#include "base/checked.h"
#include "base/log.h"

namespace hako::devices::virtio {

using memory::GuestAddr;

namespace {

constexpr uint64_t bit(unsigned n) { return uint64_t { 1 } << n; }

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

/// The body (everything after cap_vndr and cap_next) of a struct virtio_pci_cap, plus `extra` trailing bytes.
std::vector<uint8_t> cap_body(uint8_t cfg_type, uint8_t bar, uint32_t offset, uint32_t length, size_t extra = 0)
{
    std::vector<uint8_t> body(14 + extra, 0);
    body[0] = static_cast<uint8_t>(16 + extra); // cap_len counts the whole capability
    body[1] = cfg_type;
    body[2] = bar;
    body[3] = 0; // id
    put_le32(&body[6], offset);
    put_le32(&body[10], length);
    return body;
}

constexpr uint16_t MODERN_BAR_REG = pci::PCI_BASE_ADDRESS_0 + 4 * VirtioPciDevice::MODERN_BAR;
constexpr uint16_t LEGACY_BAR_REG = pci::PCI_BASE_ADDRESS_0 + 4 * VirtioPciDevice::LEGACY_BAR;
constexpr uint64_t IO_SPACE_END = 0x10000;

uint64_t legacy_bar_size(uint32_t config_size)
{
    return std::bit_ceil(std::max<uint64_t>(VirtioPciDevice::LEGACY_BAR_MIN_SIZE, virtio_pci_config_off(true) + uint64_t { config_size }));
}

std::string_view to_string(DriverInterface i)
{
    switch (i) {
    case DriverInterface::Undecided: return "undecided";
    case DriverInterface::Legacy: return "legacy";
    case DriverInterface::Modern: return "modern";
    }
    return "unknown";
}

} // namespace

uint32_t VirtioPciDevice::class_code_for(uint16_t device_type)
{
    switch (device_type) {
    case VIRTIO_ID_NET: return 0x020000;     // network controller, Ethernet
    case VIRTIO_ID_BLOCK: return 0x018000;   // mass storage, other
    case VIRTIO_ID_SCSI: return 0x010000;    // mass storage, SCSI
    case VIRTIO_ID_CONSOLE: return 0x078000; // communication controller, other
    case VIRTIO_ID_GPU: return 0x038000;     // display controller, other
    case VIRTIO_ID_INPUT: return 0x098000;   // input device, other
    default: return 0xff0000;                // unassigned class (rng, balloon, 9p, vsock, fs, ...)
    }
}

std::optional<uint16_t> VirtioPciDevice::transitional_device_id(uint16_t device_type)
{
    // 4.1.2.1, "Transitional PCI Device ID": not a linear mapping.
    switch (device_type) {
    case VIRTIO_ID_NET: return 0x1000;
    case VIRTIO_ID_BLOCK: return 0x1001;
    case VIRTIO_ID_BALLOON: return 0x1002;
    case VIRTIO_ID_CONSOLE: return 0x1003;
    case VIRTIO_ID_SCSI: return 0x1004;
    case VIRTIO_ID_RNG: return 0x1005;
    case VIRTIO_ID_9P: return 0x1009;
    default: return std::nullopt;
    }
}

Result<std::shared_ptr<VirtioPciDevice>> VirtioPciDevice::create(memory::GuestMemory const& mem,
    std::shared_ptr<VirtioDevice> device, std::shared_ptr<pci::MsiSink> msi, Options const& options)
{
    if (!device || !msi)
        return Error(ErrorKind::InvalidArgument, "virtio-pci: needs a device and an MSI sink");
    uint16_t const num_queues = device->num_queues();
    if (num_queues == 0 || num_queues > MAX_QUEUES)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("virtio-pci {}: {} queues (1 to {} supported)", device->name(), num_queues, MAX_QUEUES));
    if (device->config_size() > REGION_SIZE)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("virtio-pci {}: device configuration of {} bytes is too large", device->name(), device->config_size()));
    if (device->device_type() > 0xffff - VIRTIO_PCI_MODERN_DEVICE_ID_BASE)
        return Error(ErrorKind::InvalidArgument, fmt::format("virtio-pci: bad device type {}", device->device_type()));

    uint64_t offered = device->device_features() | bit(VIRTIO_F_VERSION_1);
    if (options.offer_indirect_desc)
        offered |= bit(VIRTIO_F_INDIRECT_DESC);
    if (options.offer_event_idx)
        offered |= bit(VIRTIO_F_EVENT_IDX);

    auto const legacy_id = options.transitional ? transitional_device_id(device->device_type()) : std::nullopt;
    pci::PciIdentity id;
    id.vendor_id = VIRTIO_PCI_VENDOR_ID;
    id.class_code = class_code_for(device->device_type());
    id.subsystem_vendor_id = VIRTIO_PCI_VENDOR_ID;
    id.interrupt_pin = 1;
    if (legacy_id) {
        // 4.1.2.1: transitional devices have revision 0 and the device type as subsystem device ID.
        id.device_id = *legacy_id;
        id.revision = 0;
        id.subsystem_id = device->device_type();
    } else {
        id.device_id = static_cast<uint16_t>(VIRTIO_PCI_MODERN_DEVICE_ID_BASE + device->device_type());
        id.revision = 1; // 4.1.2.1: non-transitional devices have revision 1 or higher
        id.subsystem_id = VIRTIO_PCI_SUBSYSTEM_ID;
    }
    auto dev = std::make_shared<VirtioPciDevice>(Passkey {}, id, mem, device, offered, legacy_id.has_value());

    for (uint16_t q = 0; q < num_queues; ++q) {
        auto queue = Queue::create(mem, device->max_queue_size(q));
        if (!queue)
            return queue.error().with_context(fmt::format("virtio-pci {}: queue {}", device->name(), q));
        dev->m_queues.push_back(std::move(*queue));
        dev->m_queue_state[q].size = dev->m_queues.back().max_size();
    }

    // BAR 1: MSI-X table at 0, PBA after it on a 2 KiB boundary.
    auto const vectors = static_cast<uint16_t>(num_queues + 1);
    uint64_t const table_bytes = pci::MsixCapability::table_bytes(vectors);
    uint64_t const pba_offset = align_up(table_bytes, 0x800);
    uint64_t const msix_bar_size = std::bit_ceil(std::max<uint64_t>(0x1000, pba_offset + pci::MsixCapability::pba_bytes(vectors)));
    if (dev->m_transitional)
        TRY(dev->add_bar(LEGACY_BAR, pci::BarKind::Io, legacy_bar_size(dev->m_config_size)));
    TRY(dev->add_bar(MSIX_BAR, pci::BarKind::Mem32, msix_bar_size));
    TRY(dev->add_bar(MODERN_BAR, pci::BarKind::Mem64, MODERN_BAR_SIZE, pci::Prefetchable::Yes));
    if (!options.option_rom.empty()) {
        TRY(dev->add_rom_bar(std::bit_ceil(std::max<uint64_t>(2048, options.option_rom.size()))));
        dev->m_option_rom = options.option_rom;
    }

    auto const bar = static_cast<uint8_t>(MODERN_BAR);
    TRY(dev->add_capability(PCI_CAP_ID_VNDR, cap_body(VIRTIO_PCI_CAP_COMMON_CFG, bar, COMMON_CFG_OFFSET, VIRTIO_PCI_COMMON_CFG_SIZE)));
    auto notify = cap_body(VIRTIO_PCI_CAP_NOTIFY_CFG, bar, NOTIFY_CFG_OFFSET, uint32_t { num_queues } * NOTIFY_OFF_MULTIPLIER, 4);
    put_le32(&notify[VIRTIO_PCI_NOTIFY_CAP_MULT - 2], NOTIFY_OFF_MULTIPLIER);
    TRY(dev->add_capability(PCI_CAP_ID_VNDR, notify));
    TRY(dev->add_capability(PCI_CAP_ID_VNDR, cap_body(VIRTIO_PCI_CAP_ISR_CFG, bar, ISR_CFG_OFFSET, 1)));
    if (dev->m_config_size > 0)
        TRY(dev->add_capability(PCI_CAP_ID_VNDR, cap_body(VIRTIO_PCI_CAP_DEVICE_CFG, bar, DEVICE_CFG_OFFSET, dev->m_config_size)));
    // 4.1.4.8: bar, offset, length and pci_cfg_data are written by the driver.
    auto pci_cfg = cap_body(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 4);
    std::vector<uint8_t> pci_cfg_mask(pci_cfg.size(), 0);
    pci_cfg_mask[VIRTIO_PCI_CAP_BAR - 2] = 0xff;
    std::fill_n(pci_cfg_mask.begin() + (VIRTIO_PCI_CAP_OFFSET - 2), 12, uint8_t { 0xff }); // offset, length, data
    dev->m_pci_cfg_cap = TRY(dev->add_capability(PCI_CAP_ID_VNDR, pci_cfg, pci_cfg_mask));

    pci::MsixCapability::Layout layout;
    layout.vectors = vectors;
    layout.table_bar = static_cast<uint8_t>(MSIX_BAR);
    layout.table_offset = 0;
    layout.pba_bar = static_cast<uint8_t>(MSIX_BAR);
    layout.pba_offset = static_cast<uint32_t>(pba_offset);
    dev->m_msix = TRY(pci::MsixCapability::create(*dev, std::move(msi), layout));
    return dev;
}

VirtioPciDevice::VirtioPciDevice(Passkey, pci::PciIdentity const& identity, memory::GuestMemory const& mem,
    std::shared_ptr<VirtioDevice> device, uint64_t offered_features, bool transitional)
    : pci::PciDevice(identity)
    , m_name(fmt::format("virtio-pci-{}", device->name()))
    , m_mem(mem)
    , m_device(std::move(device))
    , m_offered_features(offered_features)
    , m_transitional(transitional)
    , m_num_queues(m_device->num_queues())
    , m_config_size(m_device->config_size())
    , m_queue_state(m_num_queues)
    , m_queue_vectors(m_num_queues, VIRTIO_MSI_NO_VECTOR)
{
    m_queues.reserve(m_num_queues);
}

VirtioPciDevice::~VirtioPciDevice()
{
    {
        std::lock_guard lock(m_control_lock);
        if (m_queues.size() == m_num_queues)
            reset_locked();
        else
            m_device->reset();
    }
    std::lock_guard lock(m_notify_lock);
    unregister_notifies_locked();
}

// --- Counters and logging ---

void VirtioPciDevice::rejected(std::string_view what, uint64_t offset, uint64_t value, DriverInterface via)
{
    m_rejected_writes.fetch_add(1, std::memory_order_relaxed);
    HAKO_WARN_RATELIMITED("{}: rejected write {:#x} to {} {:#x}: {}", m_name, value,
        via == DriverInterface::Legacy ? "legacy register" : "common config", offset, what);
}

void VirtioPciDevice::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    m_bad_accesses.fetch_add(1, std::memory_order_relaxed);
    HAKO_WARN_RATELIMITED("{}: bad {} of {} bytes at BAR offset {:#x}", m_name, what, size, offset);
}

VirtioPciStats VirtioPciDevice::stats() const
{
    VirtioPciStats s;
    s.bad_accesses = m_bad_accesses.load(std::memory_order_relaxed);
    s.rejected_writes = m_rejected_writes.load(std::memory_order_relaxed);
    s.features_refused = m_features_refused.load(std::memory_order_relaxed);
    s.needs_reset = m_needs_reset_count.load(std::memory_order_relaxed);
    s.bad_notifies = m_bad_notifies.load(std::memory_order_relaxed);
    s.mixed_accesses = m_mixed_accesses.load(std::memory_order_relaxed);
    return s;
}

uint8_t VirtioPciDevice::device_status() const
{
    std::lock_guard lock(m_control_lock);
    std::lock_guard irq(m_irq_lock);
    return static_cast<uint8_t>(m_status | (m_needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
}

uint64_t VirtioPciDevice::negotiated_features() const
{
    std::lock_guard lock(m_control_lock);
    bool const in_effect = (m_status & VIRTIO_CONFIG_S_FEATURES_OK) || m_interface == DriverInterface::Legacy;
    return in_effect ? m_driver_features : 0;
}

DriverInterface VirtioPciDevice::driver_interface() const
{
    std::lock_guard lock(m_control_lock);
    return m_interface;
}

bool VirtioPciDevice::claim_interface_locked(DriverInterface via, bool decides, uint64_t offset)
{
    if (m_interface == via)
        return true;
    if (m_interface == DriverInterface::Undecided) {
        if (decides)
            m_interface = via;
        return true;
    }
    m_mixed_accesses.fetch_add(1, std::memory_order_relaxed);
    HAKO_WARN_RATELIMITED("{}: {} register {:#x} refused: the driver uses the {} interface until reset", m_name,
        to_string(via), offset, to_string(m_interface));
    return false;
}

bool VirtioPciDevice::active() const
{
    std::lock_guard lock(m_control_lock);
    return m_active;
}

uint8_t VirtioPciDevice::isr_status() const
{
    std::lock_guard lock(m_irq_lock);
    return m_isr;
}

// --- BAR accesses ---

void VirtioPciDevice::bar_read(int bar, uint64_t offset, std::span<uint8_t> data) { read_bar(bar, offset, data, ReadMode::Guest); }

void VirtioPciDevice::read_bar(int bar, uint64_t offset, std::span<uint8_t> data, ReadMode mode)
{
    if (m_msix->bar_read(bar, offset, data))
        return;
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (bar == pci::ROM_BAR) {
        // The ROM image, all-ones past its end (the BAR is rounded up to a power of two).
        for (size_t i = 0; i < data.size() && offset + i < m_option_rom.size(); ++i)
            data[i] = m_option_rom[offset + i];
        return;
    }
    size_t const size = data.size();
    // Snapshots for the PCI cfg access capability pass through half-set-up windows: not the guest's fault.
    auto report_bad = [&](std::string_view what, uint64_t at, size_t n) {
        if (mode == ReadMode::Guest)
            bad_access(what, at, n);
    };
    if (bar == LEGACY_BAR && m_transitional) {
        read_legacy(offset, data, mode);
        return;
    }
    bool const good_size = size == 1 || size == 2 || size == 4 || size == 8;
    if (bar != MODERN_BAR || !good_size || !range_within(offset, size, MODERN_BAR_SIZE)
        || (offset % REGION_SIZE) + size > REGION_SIZE) {
        report_bad("read", offset, size);
        return;
    }
    uint64_t const region = offset - offset % REGION_SIZE;
    uint64_t const rel = offset - region;
    switch (region) {
    case COMMON_CFG_OFFSET: {
        auto value = read_common(rel, size, mode);
        if (!value)
            report_bad("common config read", offset, size);
        else
            store_le(data, *value);
        return;
    }
    case ISR_CFG_OFFSET: {
        if (rel != 0 || size != 1) {
            report_bad("ISR read", offset, size);
            return;
        }
        data[0] = read_isr(mode);
        return;
    }
    case DEVICE_CFG_OFFSET:
        if (!range_within(rel, size, m_config_size)) {
            report_bad("device config read", offset, size);
            return;
        }
        m_device->read_config(static_cast<uint32_t>(rel), data);
        return;
    default: // notify: write-only
        report_bad("notify read", offset, size);
        return;
    }
}

uint8_t VirtioPciDevice::read_isr(ReadMode mode)
{
    std::lock_guard lock(m_irq_lock);
    uint8_t const value = m_isr;
    if (mode == ReadMode::Guest) {
        // 4.1.4.5.1: reading the ISR status resets it to 0 and de-asserts the interrupt.
        m_isr = 0;
        set_intx(false);
    }
    return value;
}

void VirtioPciDevice::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    if (m_msix->bar_write(bar, offset, data))
        return;
    if (bar == LEGACY_BAR && m_transitional) {
        write_legacy(offset, data);
        return;
    }
    size_t const size = data.size();
    bool const good_size = size == 1 || size == 2 || size == 4 || size == 8;
    if (bar != MODERN_BAR || !good_size || !range_within(offset, size, MODERN_BAR_SIZE)
        || (offset % REGION_SIZE) + size > REGION_SIZE) {
        bad_access("write", offset, size);
        return;
    }
    uint64_t const region = offset - offset % REGION_SIZE;
    uint64_t const rel = offset - region;
    switch (region) {
    case COMMON_CFG_OFFSET:
        write_common(rel, size, load_le(data));
        return;
    case ISR_CFG_OFFSET:
        bad_access("ISR write", offset, size);
        return;
    case DEVICE_CFG_OFFSET:
        if (!range_within(rel, size, m_config_size)) {
            bad_access("device config write", offset, size);
            return;
        }
        m_device->write_config(static_cast<uint32_t>(rel), data);
        return;
    default: {
        // 4.1.4.4: queue q's notify address is notify_off * multiplier; the value written (the queue index) is not
        // needed to find the queue.
        if (rel % NOTIFY_OFF_MULTIPLIER != 0 || size > NOTIFY_OFF_MULTIPLIER) {
            bad_access("notify write", offset, size);
            return;
        }
        process_notify(static_cast<uint16_t>(rel / NOTIFY_OFF_MULTIPLIER));
        return;
    }
    }
}

void VirtioPciDevice::process_notify(uint16_t queue)
{
    if (queue >= m_num_queues) {
        m_bad_notifies.fetch_add(1, std::memory_order_relaxed);
        HAKO_WARN_RATELIMITED("{}: notify of queue {}, which does not exist", m_name, queue);
        return;
    }
    m_device->queue_notify(queue);
}

// --- Common configuration ---

std::optional<uint64_t> VirtioPciDevice::read_common(uint64_t offset, size_t size, ReadMode mode)
{
    std::lock_guard lock(m_control_lock);
    if (mode == ReadMode::Guest && offset < VIRTIO_PCI_COMMON_CFG_SIZE) {
        bool const decides = offset <= VIRTIO_PCI_COMMON_GF || offset == VIRTIO_PCI_COMMON_STATUS;
        if (!claim_interface_locked(DriverInterface::Modern, decides, COMMON_CFG_OFFSET + offset))
            return ~uint64_t { 0 };
    }
    uint16_t const q = m_queue_select;
    bool const valid_q = q < m_num_queues;
    QueueState const none {};
    QueueState const& qs = valid_q ? m_queue_state[q] : none;
    // A field read with its own width; a narrower read at its start gets the low bytes (as QEMU answers, and as
    // iPXE's virtio driver reads device_feature with 16 bits).
    auto sized = [&](size_t width, uint64_t value) -> std::optional<uint64_t> {
        if (size > width)
            return std::nullopt;
        return size == 8 ? value : value & ((uint64_t { 1 } << (8 * size)) - 1);
    };
    // 64-bit fields: as a qword at the low half, or as two dwords.
    auto split = [&](uint64_t value, bool high) -> std::optional<uint64_t> {
        if (size == 4)
            return high ? value >> 32 : value & 0xffffffff;
        if (size == 8 && !high)
            return value;
        return std::nullopt;
    };
    switch (offset) {
    case VIRTIO_PCI_COMMON_DFSELECT: return sized(4, m_device_feature_select);
    case VIRTIO_PCI_COMMON_DF:
        return sized(4, m_device_feature_select < 2 ? (m_offered_features >> (32 * m_device_feature_select)) & 0xffffffff : 0);
    case VIRTIO_PCI_COMMON_GFSELECT: return sized(4, m_driver_feature_select);
    case VIRTIO_PCI_COMMON_GF:
        return sized(4, m_driver_feature_select < 2 ? (m_driver_features >> (32 * m_driver_feature_select)) & 0xffffffff : 0);
    case VIRTIO_PCI_COMMON_MSIX: {
        std::lock_guard irq(m_irq_lock);
        return sized(2, m_config_vector);
    }
    case VIRTIO_PCI_COMMON_NUMQ: return sized(2, m_num_queues);
    case VIRTIO_PCI_COMMON_STATUS: {
        std::lock_guard irq(m_irq_lock);
        return sized(1, m_status | (m_needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
    }
    case VIRTIO_PCI_COMMON_CFGGENERATION: {
        std::lock_guard irq(m_irq_lock);
        return sized(1, m_config_generation);
    }
    case VIRTIO_PCI_COMMON_Q_SELECT: return sized(2, q);
    case VIRTIO_PCI_COMMON_Q_SIZE: return sized(2, qs.size); // 0: no such queue (4.1.4.3.1)
    case VIRTIO_PCI_COMMON_Q_MSIX: {
        std::lock_guard irq(m_irq_lock);
        return sized(2, valid_q ? m_queue_vectors[q] : VIRTIO_MSI_NO_VECTOR);
    }
    case VIRTIO_PCI_COMMON_Q_ENABLE: return sized(2, qs.enabled ? 1 : 0);
    case VIRTIO_PCI_COMMON_Q_NOFF: return sized(2, valid_q ? q : 0);
    case VIRTIO_PCI_COMMON_Q_DESCLO: return split(qs.desc, false);
    case VIRTIO_PCI_COMMON_Q_DESCHI: return split(qs.desc, true);
    case VIRTIO_PCI_COMMON_Q_AVAILLO: return split(qs.driver, false);
    case VIRTIO_PCI_COMMON_Q_AVAILHI: return split(qs.driver, true);
    case VIRTIO_PCI_COMMON_Q_USEDLO: return split(qs.device, false);
    case VIRTIO_PCI_COMMON_Q_USEDHI: return split(qs.device, true);
    default: return std::nullopt;
    }
}

void VirtioPciDevice::write_common(uint64_t offset, size_t size, uint64_t value)
{
    struct Field {
        uint16_t offset;
        uint8_t width;
        bool qword_ok;
    };
    static constexpr std::array<Field, 19> FIELDS { {
        { VIRTIO_PCI_COMMON_DFSELECT, 4, false }, { VIRTIO_PCI_COMMON_DF, 4, false },
        { VIRTIO_PCI_COMMON_GFSELECT, 4, false }, { VIRTIO_PCI_COMMON_GF, 4, false },
        { VIRTIO_PCI_COMMON_MSIX, 2, false }, { VIRTIO_PCI_COMMON_NUMQ, 2, false },
        { VIRTIO_PCI_COMMON_STATUS, 1, false }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1, false },
        { VIRTIO_PCI_COMMON_Q_SELECT, 2, false }, { VIRTIO_PCI_COMMON_Q_SIZE, 2, false },
        { VIRTIO_PCI_COMMON_Q_MSIX, 2, false }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2, false },
        { VIRTIO_PCI_COMMON_Q_NOFF, 2, false }, { VIRTIO_PCI_COMMON_Q_DESCLO, 4, true },
        { VIRTIO_PCI_COMMON_Q_DESCHI, 4, false }, { VIRTIO_PCI_COMMON_Q_AVAILLO, 4, true },
        { VIRTIO_PCI_COMMON_Q_AVAILHI, 4, false }, { VIRTIO_PCI_COMMON_Q_USEDLO, 4, true },
        { VIRTIO_PCI_COMMON_Q_USEDHI, 4, false },
    } };
    bool good = false;
    for (auto const& f : FIELDS) {
        if (f.offset == offset && (f.width == size || (f.qword_ok && size == 8)))
            good = true;
    }
    if (!good) {
        bad_access("common config write", COMMON_CFG_OFFSET + offset, size);
        return;
    }

    std::lock_guard lock(m_control_lock);
    if (offset == VIRTIO_PCI_COMMON_STATUS && value == 0) { // a reset works through either interface
        write_status_locked(0, DriverInterface::Modern);
        return;
    }
    bool const decides = offset <= VIRTIO_PCI_COMMON_GF || offset == VIRTIO_PCI_COMMON_STATUS;
    if (!claim_interface_locked(DriverInterface::Modern, decides, COMMON_CFG_OFFSET + offset))
        return;
    switch (offset) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        m_device_feature_select = static_cast<uint32_t>(value);
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        m_driver_feature_select = static_cast<uint32_t>(value);
        return;
    case VIRTIO_PCI_COMMON_GF: {
        if (m_status & VIRTIO_CONFIG_S_FEATURES_OK) {
            rejected("driver features after FEATURES_OK", offset, value);
            return;
        }
        if (m_driver_feature_select >= 2) {
            if (value != 0)
                rejected("feature bits beyond 63", offset, value);
            return;
        }
        unsigned const shift = 32 * m_driver_feature_select;
        m_driver_features = (m_driver_features & ~(uint64_t { 0xffffffff } << shift)) | (value << shift);
        return;
    }
    case VIRTIO_PCI_COMMON_MSIX: {
        std::lock_guard irq(m_irq_lock);
        auto const v = static_cast<uint16_t>(value);
        // 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR.
        m_config_vector = v < m_num_queues + 1 ? v : VIRTIO_MSI_NO_VECTOR;
        return;
    }
    case VIRTIO_PCI_COMMON_STATUS:
        write_status_locked(static_cast<uint8_t>(value), DriverInterface::Modern);
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        m_queue_select = static_cast<uint16_t>(value);
        return;
    case VIRTIO_PCI_COMMON_DF:
    case VIRTIO_PCI_COMMON_NUMQ:
    case VIRTIO_PCI_COMMON_CFGGENERATION:
    case VIRTIO_PCI_COMMON_Q_NOFF:
        rejected("read-only field", offset, value);
        return;
    default:
        write_queue_field_locked(offset, size, value);
        return;
    }
}

void VirtioPciDevice::write_queue_field_locked(uint64_t offset, size_t size, uint64_t value)
{
    uint16_t const q = m_queue_select;
    if (q >= m_num_queues) {
        rejected("no such queue selected", offset, value);
        return;
    }
    if (offset == VIRTIO_PCI_COMMON_Q_MSIX) {
        std::lock_guard irq(m_irq_lock);
        auto const v = static_cast<uint16_t>(value);
        m_queue_vectors[q] = v < m_num_queues + 1 ? v : VIRTIO_MSI_NO_VECTOR;
        return;
    }
    QueueState& qs = m_queue_state[q];
    if (qs.enabled || (m_status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        rejected("queue already enabled or device live", offset, value);
        return;
    }
    auto set_half = [&](uint64_t& field, bool high) {
        if (size == 8)
            field = value;
        else if (high)
            field = (field & 0xffffffff) | (value << 32);
        else
            field = (field & ~uint64_t { 0xffffffff }) | value;
    };
    switch (offset) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (!is_power_of_two(value) || value > m_queues[q].max_size()) {
            rejected("queue size not a power of two up to the maximum", offset, value);
            return;
        }
        qs.size = static_cast<uint16_t>(value);
        return;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (value != 1) {
            rejected("queue_enable other than 1", offset, value);
            return;
        }
        enable_queue_locked(q);
        return;
    case VIRTIO_PCI_COMMON_Q_DESCLO: set_half(qs.desc, false); return;
    case VIRTIO_PCI_COMMON_Q_DESCHI: set_half(qs.desc, true); return;
    case VIRTIO_PCI_COMMON_Q_AVAILLO: set_half(qs.driver, false); return;
    case VIRTIO_PCI_COMMON_Q_AVAILHI: set_half(qs.driver, true); return;
    case VIRTIO_PCI_COMMON_Q_USEDLO: set_half(qs.device, false); return;
    case VIRTIO_PCI_COMMON_Q_USEDHI: set_half(qs.device, true); return;
    default: return;
    }
}

void VirtioPciDevice::enable_queue_locked(uint16_t q)
{
    QueueState& qs = m_queue_state[q];
    Queue& queue = m_queues[q];
    queue.set_ready(false); // a legacy PFN write may replace a working configuration
    qs.enabled = false;
    if (auto r = queue.set_size(qs.size); !r) { // checked on write; kept for safety
        set_needs_reset(r.error().message());
        return;
    }
    queue.set_desc_table(GuestAddr(qs.desc));
    queue.set_avail_ring(GuestAddr(qs.driver));
    queue.set_used_ring(GuestAddr(qs.device));
    queue.set_negotiated_features(m_driver_features);
    if (auto r = queue.validate(); !r) {
        set_needs_reset(fmt::format("queue {}: {}", q, r.error().message()));
        return;
    }
    queue.set_ready(true);
    qs.enabled = true;
}

void VirtioPciDevice::write_status_locked(uint8_t value, DriverInterface via)
{
    bool const legacy = via == DriverInterface::Legacy;
    uint64_t const reg = legacy ? VIRTIO_PCI_STATUS : VIRTIO_PCI_COMMON_STATUS;
    auto v = static_cast<uint8_t>(value & ~VIRTIO_CONFIG_S_NEEDS_RESET); // NEEDS_RESET is the device's bit
    if (v == 0) {
        reset_locked();
        return;
    }
    if (legacy && (v & VIRTIO_CONFIG_S_FEATURES_OK)) {
        // A legacy driver has no FEATURES_OK (4.1.4.10 notes): its features take effect as written.
        rejected("FEATURES_OK from a legacy driver", reg, value, via);
        v = static_cast<uint8_t>(v & ~VIRTIO_CONFIG_S_FEATURES_OK);
    }
    if (m_status & ~v) {
        rejected("device status bits cleared without a reset", reg, value, via);
        return;
    }
    auto added = static_cast<uint8_t>(v & ~m_status);
    if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
        uint64_t const unknown = m_driver_features & ~m_offered_features;
        if (unknown != 0 || !(m_driver_features & bit(VIRTIO_F_VERSION_1))) {
            m_features_refused.fetch_add(1, std::memory_order_relaxed);
            HAKO_WARN_RATELIMITED("{}: FEATURES_OK refused: driver features {:#x} (not offered {:#x}, VERSION_1 {})",
                m_name, m_driver_features, unknown, (m_driver_features >> VIRTIO_F_VERSION_1) & 1);
            v = static_cast<uint8_t>(v & ~VIRTIO_CONFIG_S_FEATURES_OK);
            added = static_cast<uint8_t>(added & ~VIRTIO_CONFIG_S_FEATURES_OK);
        }
    }
    if (!legacy && (added & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
        rejected("DRIVER_OK without FEATURES_OK", reg, value);
        v = static_cast<uint8_t>(v & ~VIRTIO_CONFIG_S_DRIVER_OK);
        added = static_cast<uint8_t>(added & ~VIRTIO_CONFIG_S_DRIVER_OK);
    }
    m_status = v;
    if (added & VIRTIO_CONFIG_S_DRIVER_OK)
        activate_locked();
}

void VirtioPciDevice::activate_locked()
{
    {
        std::lock_guard irq(m_irq_lock);
        m_driver_ok = true;
        if (m_needs_reset)
            return; // the driver must reset first
    }
    for (uint16_t q = 0; q < m_num_queues; ++q) {
        if (!m_queue_state[q].enabled)
            continue;
        m_queues[q].set_negotiated_features(m_driver_features);
        if (auto r = m_queues[q].validate(); !r) {
            set_needs_reset(fmt::format("queue {} at DRIVER_OK: {}", q, r.error().message()));
            return;
        }
    }
    ActivateContext context;
    context.features = m_driver_features;
    context.queues = std::span<Queue>(m_queues);
    context.interrupt = &m_interrupt;
    if (auto r = m_device->activate(context); !r) {
        set_needs_reset(fmt::format("activation failed: {}", r.error().message()));
        return;
    }
    m_active = true;
}

void VirtioPciDevice::reset_locked()
{
    // The device lets go of the queues before they are touched (virtio_device.h).
    m_device->reset();
    m_active = false;
    for (uint16_t q = 0; q < m_num_queues; ++q) {
        m_queues[q].reset();
        m_queue_state[q] = QueueState {};
        m_queue_state[q].size = m_queues[q].max_size();
    }
    m_status = 0;
    m_driver_features = 0;
    m_device_feature_select = 0;
    m_driver_feature_select = 0;
    m_queue_select = 0;
    m_interface = DriverInterface::Undecided;
    std::lock_guard irq(m_irq_lock);
    m_config_vector = VIRTIO_MSI_NO_VECTOR;
    std::fill(m_queue_vectors.begin(), m_queue_vectors.end(), VIRTIO_MSI_NO_VECTOR);
    m_isr = 0;
    m_needs_reset = false;
    m_driver_ok = false;
    set_intx(false);
}

// --- Interrupts ---

void VirtioPciDevice::notify_vector_or_isr(uint16_t vector, uint8_t isr_bit)
{
    // m_irq_lock held.
    if (m_msix->enabled()) {
        if (vector != VIRTIO_MSI_NO_VECTOR)
            m_msix->notify(vector);
        return;
    }
    m_isr = static_cast<uint8_t>(m_isr | isr_bit);
    set_intx(true);
}

void VirtioPciDevice::set_needs_reset(std::string_view why)
{
    std::lock_guard irq(m_irq_lock);
    if (m_needs_reset)
        return;
    m_needs_reset = true;
    m_needs_reset_count.fetch_add(1, std::memory_order_relaxed);
    HAKO_WARN_RATELIMITED("{}: DEVICE_NEEDS_RESET: {}", m_name, why);
    // 2.1.2: after DRIVER_OK, setting DEVICE_NEEDS_RESET comes with a configuration change notification.
    if (m_driver_ok)
        notify_vector_or_isr(m_config_vector, VIRTIO_PCI_ISR_CONFIG);
}

void VirtioPciDevice::Interrupt::signal_used_queue(uint16_t queue)
{
    std::lock_guard irq(m_owner.m_irq_lock);
    if (queue >= m_owner.m_num_queues)
        return;
    m_owner.notify_vector_or_isr(m_owner.m_queue_vectors[queue], VIRTIO_PCI_ISR_QUEUE);
}

void VirtioPciDevice::Interrupt::signal_config_change()
{
    std::lock_guard irq(m_owner.m_irq_lock);
    ++m_owner.m_config_generation;
    m_owner.notify_vector_or_isr(m_owner.m_config_vector, VIRTIO_PCI_ISR_CONFIG);
}

void VirtioPciDevice::Interrupt::signal_needs_reset() { m_owner.set_needs_reset("reported by the device"); }

void VirtioPciDevice::Interrupt::requeue_notify(uint16_t queue)
{
    // Lock order: the device's lock -> m_notify_lock (the registrar only posts to its event loop).
    std::lock_guard lock(m_owner.m_notify_lock);
    if (m_owner.m_registrar)
        m_owner.m_registrar->requeue_notify(queue);
}

// --- Configuration space hooks: MSI-X, notify registration, the PCI configuration access capability ---

void VirtioPciDevice::reset_device()
{
    {
        std::lock_guard lock(m_control_lock);
        reset_locked();
    }
    m_msix->reset();
    update_notify_registration();
}

void VirtioPciDevice::config_written(uint16_t offset, size_t size)
{
    m_msix->config_written(offset, size);
    if (overlaps(offset, size, pci::PCI_COMMAND, 2) || overlaps(offset, size, MODERN_BAR_REG, 8)
        || overlaps(offset, size, LEGACY_BAR_REG, 4))
        update_notify_registration();
    uint16_t const cap = m_pci_cfg_cap;
    if (overlaps(offset, size, cap + VIRTIO_PCI_CFG_CAP_DATA, 4))
        pci_cfg_data_written();
    else if (overlaps(offset, size, cap + VIRTIO_PCI_CAP_BAR, VIRTIO_PCI_CFG_CAP_DATA - VIRTIO_PCI_CAP_BAR))
        refresh_pci_cfg_data();
}

std::optional<uint64_t> VirtioPciDevice::modern_bar_placement() const
{
    // Mirrors PciDevice's placement rule: memory decoding on, not mid-sizing, not at 0, no overflow.
    if (!(config_load(pci::PCI_COMMAND, 2) & pci::PCI_COMMAND_MEMORY))
        return std::nullopt;
    uint32_t const low = config_load(MODERN_BAR_REG, 4);
    uint32_t const high = config_load(MODERN_BAR_REG + 4, 4);
    auto const low_mask = static_cast<uint32_t>(~(MODERN_BAR_SIZE - 1) & 0xfffffff0);
    if ((low & low_mask) == low_mask || high == 0xffffffff)
        return std::nullopt;
    uint64_t const addr = bar_address(MODERN_BAR);
    if (addr == 0 || !checked_add(addr, MODERN_BAR_SIZE))
        return std::nullopt;
    return addr;
}

std::optional<uint64_t> VirtioPciDevice::legacy_bar_placement() const
{
    // Mirrors PciDevice's placement rule for an I/O BAR: I/O decoding on, not mid-sizing, not at 0, below 64 KiB.
    if (!m_transitional || !(config_load(pci::PCI_COMMAND, 2) & pci::PCI_COMMAND_IO))
        return std::nullopt;
    uint64_t const size = bar_size(LEGACY_BAR);
    auto const mask = static_cast<uint32_t>(~(size - 1) & 0xfffffffc);
    if ((config_load(LEGACY_BAR_REG, 4) & mask) == mask)
        return std::nullopt;
    uint64_t const addr = bar_address(LEGACY_BAR);
    if (addr == 0 || addr + size > IO_SPACE_END)
        return std::nullopt;
    return addr;
}

std::optional<uint64_t> VirtioPciDevice::notify_address(uint16_t queue) const
{
    auto base = modern_bar_placement();
    if (!base || queue >= m_num_queues)
        return std::nullopt;
    return *base + NOTIFY_CFG_OFFSET + uint64_t { queue } * NOTIFY_OFF_MULTIPLIER;
}

std::optional<uint64_t> VirtioPciDevice::legacy_notify_port() const
{
    auto base = legacy_bar_placement();
    if (!base)
        return std::nullopt;
    return *base + VIRTIO_PCI_QUEUE_NOTIFY;
}

namespace {

uint64_t modern_notify_at(uint64_t base, uint16_t q)
{
    return base + VirtioPciDevice::NOTIFY_CFG_OFFSET + uint64_t { q } * VirtioPciDevice::NOTIFY_OFF_MULTIPLIER;
}

} // namespace

void VirtioPciDevice::unregister_notifies_locked()
{
    // m_notify_lock held.
    if (!m_registrar)
        return;
    if (m_registered_base) {
        for (uint16_t q = 0; q < m_num_queues; ++q)
            m_registrar->remove_notify(q, modern_notify_at(*m_registered_base, q), NOTIFY_LEN, NotifySpace::Memory);
    }
    if (m_registered_io_base) {
        for (uint16_t q = 0; q < m_num_queues; ++q)
            m_registrar->remove_notify(q, *m_registered_io_base + VIRTIO_PCI_QUEUE_NOTIFY, NOTIFY_LEN, NotifySpace::Io);
    }
    m_registered_base.reset();
    m_registered_io_base.reset();
}

void VirtioPciDevice::update_notify_registration()
{
    auto const want = modern_bar_placement();
    auto const want_io = legacy_bar_placement();
    std::lock_guard lock(m_notify_lock);
    if (!m_registrar)
        return;
    if (want != m_registered_base) {
        if (m_registered_base) {
            for (uint16_t q = 0; q < m_num_queues; ++q)
                m_registrar->remove_notify(q, modern_notify_at(*m_registered_base, q), NOTIFY_LEN, NotifySpace::Memory);
        }
        m_registered_base = want;
        if (want) {
            for (uint16_t q = 0; q < m_num_queues; ++q)
                m_registrar->add_notify(q, modern_notify_at(*want, q), NOTIFY_LEN, NotifySpace::Memory);
        }
    }
    if (want_io != m_registered_io_base) {
        if (m_registered_io_base) {
            for (uint16_t q = 0; q < m_num_queues; ++q)
                m_registrar->remove_notify(q, *m_registered_io_base + VIRTIO_PCI_QUEUE_NOTIFY, NOTIFY_LEN, NotifySpace::Io);
        }
        m_registered_io_base = want_io;
        if (want_io) {
            for (uint16_t q = 0; q < m_num_queues; ++q)
                m_registrar->add_notify(q, *want_io + VIRTIO_PCI_QUEUE_NOTIFY, NOTIFY_LEN, NotifySpace::Io);
        }
    }
}

void VirtioPciDevice::set_notify_registrar(std::shared_ptr<NotifyRegistrar> registrar)
{
    {
        std::lock_guard lock(m_notify_lock);
        unregister_notifies_locked();
        m_registrar = std::move(registrar);
    }
    update_notify_registration();
}

namespace {

struct CfgWindow {
    int bar;
    uint32_t offset;
    uint32_t length;
};

} // namespace

void VirtioPciDevice::refresh_pci_cfg_data()
{
    uint16_t const cap = m_pci_cfg_cap;
    CfgWindow const w { static_cast<int>(config_load(cap + VIRTIO_PCI_CAP_BAR, 1)),
        config_load(cap + VIRTIO_PCI_CAP_OFFSET, 4), config_load(cap + VIRTIO_PCI_CAP_LENGTH, 4) };
    // 4.1.4.8: a window of 1, 2 or 4 bytes, aligned to its length, in BAR 0-5. Anything else reads 0 until fixed.
    if (w.bar >= pci::NUM_BARS || (w.length != 1 && w.length != 2 && w.length != 4) || w.offset % w.length != 0) {
        config_store(cap + VIRTIO_PCI_CFG_CAP_DATA, 4, 0);
        return;
    }
    std::array<uint8_t, 4> buf {};
    read_bar(w.bar, w.offset, std::span<uint8_t>(buf.data(), w.length), ReadMode::Peek);
    config_store(cap + VIRTIO_PCI_CFG_CAP_DATA, 4, get_le32(buf.data()));
}

void VirtioPciDevice::pci_cfg_data_written()
{
    uint16_t const cap = m_pci_cfg_cap;
    CfgWindow const w { static_cast<int>(config_load(cap + VIRTIO_PCI_CAP_BAR, 1)),
        config_load(cap + VIRTIO_PCI_CAP_OFFSET, 4), config_load(cap + VIRTIO_PCI_CAP_LENGTH, 4) };
    if (w.bar >= pci::NUM_BARS || (w.length != 1 && w.length != 2 && w.length != 4) || w.offset % w.length != 0) {
        bad_access("PCI cfg capability window", w.offset, w.length);
        return;
    }
    std::array<uint8_t, 4> buf {};
    put_le32(buf.data(), config_load(cap + VIRTIO_PCI_CFG_CAP_DATA, 4));
    bar_write(w.bar, w.offset, std::span<uint8_t const>(buf.data(), w.length));
    refresh_pci_cfg_data();
}

} // namespace hako::devices::virtio
