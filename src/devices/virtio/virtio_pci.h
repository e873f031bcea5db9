// VirtioPciDevice: the virtio PCI transport (VIRTIO 1.2 section 4.1, "Virtio Over PCI Bus") carrying any
// VirtioDevice: the modern (1.x) interface, and by default also the legacy (0.9.5) interface of a transitional
// device (4.1.4.10, 4.1.5.1.x "Legacy Interface" notes), as QEMU's virtio-pci devices on a PCI bus.
//
// PCI identity (4.1.2): vendor 0x1af4, a class code per device type, interrupt pin INTA#.
//   Modern-only (Options::transitional false, or a device type with no transitional ID): device 0x1040 + device
//   type, revision 1, subsystem 0x1af4:0x1100 (as QEMU).
//   Transitional (4.1.2.1 table): device 0x1000 net, 0x1001 block, 0x1002 balloon, 0x1003 console, 0x1004 SCSI,
//   0x1005 entropy, 0x1009 9P; revision 0; subsystem 0x1af4:<device type> (legacy drivers find the type there).
// BARs: BAR 0, I/O, transitional only: the legacy header (below), bit_ceil(0x18 + config size), at least 0x20.
//       BAR 1, 32-bit memory: the MSI-X table (offset 0) and PBA (offset 0x800 or after the table).
//       BAR 4, 64-bit prefetchable memory, 16 KiB (as QEMU):
//         0x0000 common configuration (4.1.4.3, struct virtio_pci_common_cfg, 0x38 bytes)
//         0x1000 ISR status (4.1.4.5, 1 byte: bit 0 queue interrupt, bit 1 configuration change; read clears)
//         0x2000 device-specific configuration (4.1.4.6; the capability is omitted if the device has none)
//         0x3000 notifications (4.1.4.4): queue q at 0x3000 + q * NOTIFY_OFF_MULTIPLIER (4), queue_notify_off = q
// Capabilities (vendor-specific, ID 0x09, 4.1.4): common, notify (with notify_off_multiplier), ISR, device, and
// the PCI configuration access capability (4.1.4.8, whose bar/offset/length/pci_cfg_data fields are writable),
// then MSI-X (pci::MsixCapability) with num_queues + 1 vectors. A transitional device has them too.
// Interrupts (4.1.5.3, 4.1.5.4): with MSI-X enabled, config_msix_vector and queue_msix_vector select the vector
// (VIRTIO_MSI_NO_VECTOR: none; a vector beyond the table reads back as NO_VECTOR); with MSI-X disabled, the ISR
// bits are set and INTx is asserted until the driver reads the ISR.
// Common configuration rules: fields are accessed with their natural width (64-bit fields also as two dwords);
// anything else reads all-ones and is counted. Driver features are stored as written but FEATURES_OK is refused
// unless they are a subset of what is offered and include VIRTIO_F_VERSION_1. Device status bits cannot be cleared
// except by writing 0 (reset: the device, its queues, features, vectors and the ISR). Queue registers can be
// written only while the queue is disabled and DRIVER_OK is not set; queue_size must be a power of two <= the
// maximum. A queue is validated (Queue::validate) when enabled and again at DRIVER_OK; a bad queue, a failed
// activate() or a device's signal_needs_reset() sets DEVICE_NEEDS_RESET (and after DRIVER_OK sends a configuration
// change notification). Writing 0 to queue_enable is ignored.
//
// Legacy header (BAR 0, little-endian as an x86 guest; names as Linux's uapi virtio_pci.h), natural width only:
//   0x00 VIRTIO_PCI_HOST_FEATURES   32 RO  bits 0-31 of the offered features (so never VERSION_1)
//   0x04 VIRTIO_PCI_GUEST_FEATURES  32 RW  bits not offered are dropped (counted as features_refused); frozen at
//                                          DRIVER_OK. A legacy driver has no FEATURES_OK: these are the features.
//   0x08 VIRTIO_PCI_QUEUE_PFN       32 RW  selected queue at PFN << 12, legacy layout (2.7 legacy note): descriptors,
//                                          then the available ring (with used_event), then the used ring at the next
//                                          4096 boundary; validated like queue_enable; 0 disables. Before DRIVER_OK.
//   0x0C VIRTIO_PCI_QUEUE_NUM       16 RO  the queue's maximum size, which is the size (legacy cannot change it)
//   0x0E VIRTIO_PCI_QUEUE_SEL       16 RW
//   0x10 VIRTIO_PCI_QUEUE_NOTIFY    16 WO  the value is the queue index
//   0x12 VIRTIO_PCI_STATUS           8 RW  as above, except DRIVER_OK needs no FEATURES_OK (which a legacy driver
//                                          cannot set); 0 resets
//   0x13 VIRTIO_PCI_ISR              8 RO  the same ISR as BAR 4; read clears and deasserts INTx
//   MSI-X enabled: 0x14 VIRTIO_MSI_CONFIG_VECTOR 16 RW, 0x16 VIRTIO_MSI_QUEUE_VECTOR 16 RW, device config at 0x18;
//   MSI-X disabled: device config at 0x14. Device config takes 1, 2 or 4-byte accesses inside config_size().
// One interface per driver (4.1.4.10 notes): the first feature or status access (either BAR; not a status write of
// 0) picks legacy or modern; until the next reset, the other interface's header/common configuration registers are
// refused (counted as mixed_accesses, reads all-ones). A status write of 0 resets through either interface, so a
// firmware using one and an OS using the other can follow each other. ISR, notifications and device configuration
// work through both.
//
// Notifications: a write to a queue's notify address calls VirtioDevice::queue_notify(q) (the queue is taken from
// the address, or for the legacy port from the value). For KVM ioeventfds, a NotifyRegistrar is told each queue's
// notify address whenever BAR 4 or BAR 0 moves; the ioeventfd's handler calls process_notify(q). The BAR path works
// without it.
//
// Deliberately not done: VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_RESET (queue_reset) and queue_notify_data;
// shared memory capabilities; MSI (only MSI-X and INTx); legacy queue setup after DRIVER_OK (refused: the device
// owns the queues then); big-endian legacy guests; legacy-only feature bits (NOTIFY_ON_EMPTY, ANY_LAYOUT) are not
// offered, and a device sees legacy features without VERSION_1 and must cope (e.g. virtio-net's 10-byte header).
// The PCI configuration access capability reads a snapshot: pci_cfg_data is refreshed whenever the driver writes
// the capability's bar, offset, length or data (PciDevice::config_read has no hook), and such a read does not
// clear the ISR nor pick an interface.
//
// Implementation: virtio_pci.cpp (creation, modern interface, interrupts, notify registration), virtio_pci_legacy.cpp
// (the BAR 0 legacy header).
//
// Locking (outer to inner): m_control_lock (common configuration, legacy header, queues, status, interface) -> the
// device's lock -> m_irq_lock (vectors, ISR, generation, NEEDS_RESET) -> MSI-X lock -> PciDevice config lock.
// m_notify_lock guards the NotifyRegistrar and is taken alone (it calls only the registrar). process_notify() takes
// no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "devices/pci/msi.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_device.h"
#include "memory/guest_memory.h"

namespace hako::devices::virtio {

// Vendor-specific capability (4.1.4): struct virtio_pci_cap and its cfg_type values.
constexpr uint8_t PCI_CAP_ID_VNDR = 0x09;
constexpr uint8_t VIRTIO_PCI_CAP_COMMON_CFG = 1;
constexpr uint8_t VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
constexpr uint8_t VIRTIO_PCI_CAP_ISR_CFG = 3;
constexpr uint8_t VIRTIO_PCI_CAP_DEVICE_CFG = 4;
constexpr uint8_t VIRTIO_PCI_CAP_PCI_CFG = 5;
// Offsets inside struct virtio_pci_cap (from the capability ID byte).
constexpr uint8_t VIRTIO_PCI_CAP_VNDR = 0;
constexpr uint8_t VIRTIO_PCI_CAP_NEXT = 1;
constexpr uint8_t VIRTIO_PCI_CAP_LEN = 2;
constexpr uint8_t VIRTIO_PCI_CAP_CFG_TYPE = 3;
constexpr uint8_t VIRTIO_PCI_CAP_BAR = 4;
constexpr uint8_t VIRTIO_PCI_CAP_ID = 5;
constexpr uint8_t VIRTIO_PCI_CAP_OFFSET = 8;
constexpr uint8_t VIRTIO_PCI_CAP_LENGTH = 12;
constexpr uint8_t VIRTIO_PCI_NOTIFY_CAP_MULT = 16;  // struct virtio_pci_notify_cap: notify_off_multiplier
constexpr uint8_t VIRTIO_PCI_CFG_CAP_DATA = 16;     // struct virtio_pci_cfg_cap: pci_cfg_data[4]

// struct virtio_pci_common_cfg (4.1.4.3), offsets as in Linux's virtio_pci.h.
constexpr uint16_t VIRTIO_PCI_COMMON_DFSELECT = 0x00;
constexpr uint16_t VIRTIO_PCI_COMMON_DF = 0x04;
constexpr uint16_t VIRTIO_PCI_COMMON_GFSELECT = 0x08;
constexpr uint16_t VIRTIO_PCI_COMMON_GF = 0x0c;
constexpr uint16_t VIRTIO_PCI_COMMON_MSIX = 0x10;
constexpr uint16_t VIRTIO_PCI_COMMON_NUMQ = 0x12;
constexpr uint16_t VIRTIO_PCI_COMMON_STATUS = 0x14;
constexpr uint16_t VIRTIO_PCI_COMMON_CFGGENERATION = 0x15;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_SELECT = 0x16;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_SIZE = 0x18;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_MSIX = 0x1a;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_ENABLE = 0x1c;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_NOFF = 0x1e;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_DESCLO = 0x20;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_DESCHI = 0x24;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_AVAILLO = 0x28;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_AVAILHI = 0x2c;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_USEDLO = 0x30;
constexpr uint16_t VIRTIO_PCI_COMMON_Q_USEDHI = 0x34;
constexpr uint32_t VIRTIO_PCI_COMMON_CFG_SIZE = 0x38;

constexpr uint8_t VIRTIO_PCI_ISR_QUEUE = 0x1;
constexpr uint8_t VIRTIO_PCI_ISR_CONFIG = 0x2;
constexpr uint16_t VIRTIO_MSI_NO_VECTOR = 0xffff;

constexpr uint16_t VIRTIO_PCI_VENDOR_ID = 0x1af4;
constexpr uint16_t VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
constexpr uint16_t VIRTIO_PCI_SUBSYSTEM_ID = 0x1100;

// Legacy header in BAR 0 (4.1.4.10), offsets as in Linux's uapi virtio_pci.h.
constexpr uint16_t VIRTIO_PCI_HOST_FEATURES = 0x00;
constexpr uint16_t VIRTIO_PCI_GUEST_FEATURES = 0x04;
constexpr uint16_t VIRTIO_PCI_QUEUE_PFN = 0x08;
constexpr uint16_t VIRTIO_PCI_QUEUE_NUM = 0x0c;
constexpr uint16_t VIRTIO_PCI_QUEUE_SEL = 0x0e;
constexpr uint16_t VIRTIO_PCI_QUEUE_NOTIFY = 0x10;
constexpr uint16_t VIRTIO_PCI_STATUS = 0x12;
constexpr uint16_t VIRTIO_PCI_ISR = 0x13;
constexpr uint16_t VIRTIO_MSI_CONFIG_VECTOR = 0x14; // only while MSI-X is enabled
constexpr uint16_t VIRTIO_MSI_QUEUE_VECTOR = 0x16;  // only while MSI-X is enabled
/// Where the device-specific configuration starts in BAR 0.
constexpr uint16_t virtio_pci_config_off(bool msix_enabled) { return msix_enabled ? 0x18 : 0x14; }
constexpr unsigned VIRTIO_PCI_QUEUE_ADDR_SHIFT = 12; // the PFN is the queue address >> 12
constexpr uint64_t VIRTIO_PCI_VRING_ALIGN = 4096;    // the legacy used ring starts on this boundary

/// Which address space a notify registration is in.
enum class NotifySpace : uint8_t {
    Memory, // a modern notify address in BAR 4: one address per queue, the value written does not matter
    Io,     // the legacy notify port in BAR 0: one port shared by all queues; the 16-bit value written is the queue
            // index, so the registrar must match it (KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH)
};

/// Told where each queue's notify register is, so the VMM can attach a KVM ioeventfd (whose handler calls
/// VirtioPciDevice::process_notify(queue)). Called with the transport's notify lock held: must not call back into
/// the transport's configuration or BAR methods (process_notify is fine from another thread).
class NotifyRegistrar {
public:
    virtual ~NotifyRegistrar() = default;
    /// \param queue queue index  \param addr guest-physical address (Memory) or port (Io) of its notify register
    /// \param len bytes the driver writes there (2: the 16-bit queue index)  \param space see NotifySpace
    virtual void add_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space) = 0;
    /// Undoes add_notify() with the same arguments (BAR moved or disabled, registrar replaced, transport destroyed).
    virtual void remove_notify(uint16_t queue, uint64_t addr, uint32_t len, NotifySpace space) = 0;
    /// Has VirtioPciDevice::process_notify(queue) called again later on the thread notifies are served on (see
    /// VirtioInterrupt::requeue_notify). Must not call into the device or transport synchronously.
    virtual void requeue_notify(uint16_t /*queue*/) { }
};

/// Which interface the driver chose (see the file comment).
enum class DriverInterface : uint8_t { Undecided, Legacy, Modern };

/// Counters of what the transport refused or dropped, cumulative.
struct VirtioPciStats {
    uint64_t bad_accesses { 0 };      // wrong size/alignment/offset in BAR 4 or the cfg access capability
    uint64_t rejected_writes { 0 };   // register writes refused by the rules above (status, queue, feature)
    uint64_t features_refused { 0 };  // FEATURES_OK refused
    uint64_t needs_reset { 0 };       // times DEVICE_NEEDS_RESET was set
    uint64_t bad_notifies { 0 };      // notifies of a queue that does not exist
    uint64_t mixed_accesses { 0 };    // legacy/modern register accesses refused because the driver uses the other
};

class VirtioPciDevice final : public pci::PciDevice {
    struct Passkey {};

public:
    /// BAR layout.
    static constexpr int LEGACY_BAR = 0;
    static constexpr uint64_t LEGACY_BAR_MIN_SIZE = 0x20;
    static constexpr int MSIX_BAR = 1;
    static constexpr int MODERN_BAR = 4;
    static constexpr uint64_t MODERN_BAR_SIZE = 0x4000;
    static constexpr uint32_t COMMON_CFG_OFFSET = 0x0000;
    static constexpr uint32_t ISR_CFG_OFFSET = 0x1000;
    static constexpr uint32_t DEVICE_CFG_OFFSET = 0x2000;
    static constexpr uint32_t NOTIFY_CFG_OFFSET = 0x3000;
    static constexpr uint32_t REGION_SIZE = 0x1000;
    static constexpr uint32_t NOTIFY_OFF_MULTIPLIER = 4;
    static constexpr uint16_t MAX_QUEUES = REGION_SIZE / NOTIFY_OFF_MULTIPLIER;
    static constexpr uint32_t NOTIFY_LEN = 2;

    struct Options {
        bool offer_indirect_desc { true }; // VIRTIO_F_INDIRECT_DESC
        bool offer_event_idx { true };     // VIRTIO_F_EVENT_IDX
        /// A transitional device (legacy I/O BAR 0 and IDs) as QEMU's default on a PCI bus. Ignored (modern-only)
        /// for device types with no transitional device ID.
        bool transitional { true };
        /// An expansion ROM (PCI option ROM, e.g. iPXE's pxe-virtio.rom) shown through the ROM BAR; empty: none.
        std::vector<uint8_t> option_rom;
    };

    /// A transport for `device` (1 to MAX_QUEUES queues, config_size() <= 4 KiB). `mem` must outlive it.
    /// MSI-X messages go to `msi`. Add the result to a PciRoot (which sets the BarMapper and INTx line).
    [[nodiscard]] static Result<std::shared_ptr<VirtioPciDevice>> create(memory::GuestMemory const& mem,
        std::shared_ptr<VirtioDevice> device, std::shared_ptr<pci::MsiSink> msi, Options const& options);
    [[nodiscard]] static Result<std::shared_ptr<VirtioPciDevice>> create(memory::GuestMemory const& mem,
        std::shared_ptr<VirtioDevice> device, std::shared_ptr<pci::MsiSink> msi)
    {
        return create(mem, std::move(device), std::move(msi), Options {});
    }

    VirtioPciDevice(Passkey, pci::PciIdentity const& identity, memory::GuestMemory const& mem,
        std::shared_ptr<VirtioDevice> device, uint64_t offered_features, bool transitional);
    /// Resets the device (so it drops the queues) and removes any notify registrations.
    ~VirtioPciDevice() override;

    std::string_view name() const override { return m_name; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override;

    /// A notification of `queue` that did not come through a BAR write (an ioeventfd fired). Any thread.
    void process_notify(uint16_t queue);
    /// Sets (or with nullptr clears) the registrar; registers the current notify addresses if BAR 4 is mapped.
    void set_notify_registrar(std::shared_ptr<NotifyRegistrar> registrar);
    /// The guest-physical notify address of `queue`, if BAR 4 is currently decoded.
    std::optional<uint64_t> notify_address(uint16_t queue) const;
    /// The legacy notify port (BAR 0 + VIRTIO_PCI_QUEUE_NOTIFY), if transitional and BAR 0 is currently decoded.
    std::optional<uint64_t> legacy_notify_port() const;

    /// The PCI class code used for a device type (e.g. 0xff0000 "other" for rng).
    static uint32_t class_code_for(uint16_t device_type);
    /// The transitional PCI device ID of a device type (4.1.2.1), if it has one.
    static std::optional<uint16_t> transitional_device_id(uint16_t device_type);

    // Introspection (tests, debugging).
    uint8_t device_status() const;
    uint64_t offered_features() const { return m_offered_features; }
    /// The features in effect: after FEATURES_OK (modern), or as written to guest features (legacy); else 0.
    uint64_t negotiated_features() const;
    bool transitional() const { return m_transitional; }
    DriverInterface driver_interface() const;
    bool active() const;
    uint8_t isr_status() const;
    VirtioPciStats stats() const;
    pci::MsixCapability const& msix() const { return *m_msix; }
    /// Offset in config space of the PCI configuration access capability.
    uint8_t pci_cfg_cap_offset() const { return m_pci_cfg_cap; }

protected:
    void config_written(uint16_t offset, size_t size) override;
    /// Function reset: the virtio device reset (status 0), MSI-X table masked, notify registrations dropped.
    void reset_device() override;

private:
    class Interrupt final : public VirtioInterrupt {
    public:
        explicit Interrupt(VirtioPciDevice& owner) : m_owner(owner) { }
        void signal_used_queue(uint16_t queue) override;
        void signal_config_change() override;
        void signal_needs_reset() override;
        void requeue_notify(uint16_t queue) override;

    private:
        VirtioPciDevice& m_owner;
    };

    struct QueueState {
        uint16_t size { 0 };
        bool enabled { false };
        uint64_t desc { 0 };
        uint64_t driver { 0 };
        uint64_t device { 0 };
        uint32_t pfn { 0 }; // legacy VIRTIO_PCI_QUEUE_PFN as written
    };
    enum class ReadMode { Guest, Peek };

    void read_bar(int bar, uint64_t offset, std::span<uint8_t> data, ReadMode mode);
    std::optional<uint64_t> read_common(uint64_t offset, size_t size, ReadMode mode);
    void write_common(uint64_t offset, size_t size, uint64_t value);
    uint8_t read_isr(ReadMode mode);
    void read_legacy(uint64_t offset, std::span<uint8_t> data, ReadMode mode);
    void write_legacy(uint64_t offset, std::span<uint8_t const> data);
    std::optional<uint64_t> read_legacy_header_locked(uint64_t offset);
    void write_legacy_header_locked(uint64_t offset, uint64_t value);
    void write_legacy_pfn_locked(uint32_t pfn);
    /// m_control_lock held. Feature/status accesses (`decides`) pick the interface if none is picked yet.
    /// \return false (counted, logged) if the driver uses the other interface
    bool claim_interface_locked(DriverInterface via, bool decides, uint64_t offset);
    void write_status_locked(uint8_t value, DriverInterface via);
    void write_queue_field_locked(uint64_t offset, size_t size, uint64_t value);
    void enable_queue_locked(uint16_t queue);
    void activate_locked();
    void reset_locked();
    void set_needs_reset(std::string_view why);
    void notify_vector_or_isr(uint16_t vector, uint8_t isr_bit);
    void rejected(std::string_view what, uint64_t offset, uint64_t value, DriverInterface via = DriverInterface::Modern);
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    void update_notify_registration();
    void unregister_notifies_locked();
    std::optional<uint64_t> modern_bar_placement() const;
    std::optional<uint64_t> legacy_bar_placement() const;
    void refresh_pci_cfg_data();
    void pci_cfg_data_written();

    std::string m_name;
    memory::GuestMemory const& m_mem;
    std::shared_ptr<VirtioDevice> m_device;
    uint64_t const m_offered_features;
    bool const m_transitional;
    uint16_t const m_num_queues;
    uint32_t const m_config_size;
    std::unique_ptr<pci::MsixCapability> m_msix;
    std::vector<uint8_t> m_option_rom; // set once in create()
    uint8_t m_pci_cfg_cap { 0 };
    Interrupt m_interrupt { *this };

    mutable std::mutex m_control_lock; // guards the fields below, up to m_irq_lock
    uint32_t m_device_feature_select { 0 };
    uint32_t m_driver_feature_select { 0 };
    uint64_t m_driver_features { 0 };
    uint8_t m_status { 0 }; // without NEEDS_RESET (m_needs_reset)
    uint16_t m_queue_select { 0 };
    bool m_active { false };
    DriverInterface m_interface { DriverInterface::Undecided };
    std::vector<QueueState> m_queue_state;
    std::vector<Queue> m_queues; // the device's from activate() until reset()

    mutable std::mutex m_irq_lock; // guards the fields below, up to m_notify_lock
    uint16_t m_config_vector { VIRTIO_MSI_NO_VECTOR };
    std::vector<uint16_t> m_queue_vectors;
    uint8_t m_isr { 0 };
    uint8_t m_config_generation { 0 };
    bool m_needs_reset { false };
    bool m_driver_ok { false };

    mutable std::mutex m_notify_lock; // guards the fields below
    std::shared_ptr<NotifyRegistrar> m_registrar;
    std::optional<uint64_t> m_registered_base;    // BAR 4 address the registrar was told about
    std::optional<uint64_t> m_registered_io_base; // BAR 0 port the registrar was told about

    std::atomic<uint64_t> m_bad_accesses { 0 };
    std::atomic<uint64_t> m_rejected_writes { 0 };
    std::atomic<uint64_t> m_features_refused { 0 };
    std::atomic<uint64_t> m_needs_reset_count { 0 };
    std::atomic<uint64_t> m_bad_notifies { 0 };
    std::atomic<uint64_t> m_mixed_accesses { 0 };
};

} // namespace hako::devices::virtio
