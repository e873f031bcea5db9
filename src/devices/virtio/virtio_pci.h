// VirtioPciDevice: the virtio 1.x PCI transport (VIRTIO 1.2 section 4.1, "Virtio Over PCI Bus"), modern
// (non-transitional) only, carrying any VirtioDevice.
//
// PCI identity (4.1.2): vendor 0x1af4, device 0x1040 + device type, revision 1, subsystem 0x1af4:0x1100 (as
// QEMU), a class code per device type, interrupt pin INTA#.
// BARs: BAR 1, 32-bit memory: the MSI-X table (offset 0) and PBA (offset 0x800 or after the table).
//       BAR 4, 64-bit prefetchable memory, 16 KiB (as QEMU):
//         0x0000 common configuration (4.1.4.3, struct virtio_pci_common_cfg, 0x38 bytes)
//         0x1000 ISR status (4.1.4.5, 1 byte: bit 0 queue interrupt, bit 1 configuration change; read clears)
//         0x2000 device-specific configuration (4.1.4.6; the capability is omitted if the device has none)
//         0x3000 notifications (4.1.4.4): queue q at 0x3000 + q * NOTIFY_OFF_MULTIPLIER (4), queue_notify_off = q
// Capabilities (vendor-specific, ID 0x09, 4.1.4): common, notify (with notify_off_multiplier), ISR, device, and
// the PCI configuration access capability (4.1.4.8, whose bar/offset/length/pci_cfg_data fields are writable),
// then MSI-X (pci::MsixCapability) with num_queues + 1 vectors.
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
// Notifications: a write to a queue's notify address calls VirtioDevice::queue_notify(q) (the queue is taken from
// the address; the value is not used). For KVM ioeventfds, a NotifyRegistrar is told each queue's notify address
// whenever BAR 4 moves; the ioeventfd's handler calls process_notify(q). The MMIO path works without it.
//
// Deliberately not done: the legacy/transitional interface (I/O BAR, device IDs 0x1000-0x103f): not trivial, and
// modern drivers (Linux >= 4.0, SeaBIOS) do not need it; VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_RESET
// (queue_reset) and queue_notify_data; shared memory capabilities; MSI (only MSI-X and INTx).
// The PCI configuration access capability reads a snapshot: pci_cfg_data is refreshed whenever the driver writes
// the capability's bar, offset, length or data (PciDevice::config_read has no hook), and such a read does not
// clear the ISR.
//
// Locking (outer to inner): m_control_lock (common configuration, queues, status) -> the device's lock ->
// m_irq_lock (vectors, ISR, generation, NEEDS_RESET) -> MSI-X lock -> PciDevice config lock. m_notify_lock guards
// the NotifyRegistrar and is taken alone (it calls only the registrar). process_notify() takes no lock.
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

/// Told where each queue's notify register is, so the VMM can attach a KVM ioeventfd (whose handler calls
/// VirtioPciDevice::process_notify(queue)). Called with the transport's notify lock held: must not call back into
/// the transport's configuration or BAR methods (process_notify is fine from another thread).
class NotifyRegistrar {
public:
    virtual ~NotifyRegistrar() = default;
    /// \param queue queue index  \param gpa guest-physical address of its notify register  \param len bytes
    ///        the driver writes there (2: the 16-bit queue index)
    virtual void add_notify(uint16_t queue, uint64_t gpa, uint32_t len) = 0;
    /// Undoes add_notify() with the same arguments (BAR moved or disabled, registrar replaced, transport destroyed).
    virtual void remove_notify(uint16_t queue, uint64_t gpa, uint32_t len) = 0;
};

/// Counters of what the transport refused or dropped, cumulative.
struct VirtioPciStats {
    uint64_t bad_accesses { 0 };      // wrong size/alignment/offset in BAR 4 or the cfg access capability
    uint64_t rejected_writes { 0 };   // register writes refused by the rules above (status, queue, feature)
    uint64_t features_refused { 0 };  // FEATURES_OK refused
    uint64_t needs_reset { 0 };       // times DEVICE_NEEDS_RESET was set
    uint64_t bad_notifies { 0 };      // notifies of a queue that does not exist
};

class VirtioPciDevice final : public pci::PciDevice {
    struct Passkey {};

public:
    /// BAR layout.
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
        std::shared_ptr<VirtioDevice> device, uint64_t offered_features);
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

    /// The PCI class code used for a device type (e.g. 0xff0000 "other" for rng).
    static uint32_t class_code_for(uint16_t device_type);

    // Introspection (tests, debugging).
    uint8_t device_status() const;
    uint64_t offered_features() const { return m_offered_features; }
    uint64_t negotiated_features() const;
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

    private:
        VirtioPciDevice& m_owner;
    };

    struct QueueState {
        uint16_t size { 0 };
        bool enabled { false };
        uint64_t desc { 0 };
        uint64_t driver { 0 };
        uint64_t device { 0 };
    };
    enum class ReadMode { Guest, Peek };

    void read_bar(int bar, uint64_t offset, std::span<uint8_t> data, ReadMode mode);
    std::optional<uint64_t> read_common(uint64_t offset, size_t size);
    void write_common(uint64_t offset, size_t size, uint64_t value);
    void write_status_locked(uint8_t value);
    void write_queue_field_locked(uint64_t offset, size_t size, uint64_t value);
    void enable_queue_locked(uint16_t queue);
    void activate_locked();
    void reset_locked();
    void set_needs_reset(std::string_view why);
    void notify_vector_or_isr(uint16_t vector, uint8_t isr_bit);
    void rejected(std::string_view what, uint64_t offset, uint64_t value);
    void bad_access(std::string_view what, uint64_t offset, size_t size);
    void update_notify_registration();
    std::optional<uint64_t> modern_bar_placement() const;
    void refresh_pci_cfg_data();
    void pci_cfg_data_written();

    std::string m_name;
    memory::GuestMemory const& m_mem;
    std::shared_ptr<VirtioDevice> m_device;
    uint64_t const m_offered_features;
    uint16_t const m_num_queues;
    uint32_t const m_config_size;
    std::unique_ptr<pci::MsixCapability> m_msix;
    uint8_t m_pci_cfg_cap { 0 };
    Interrupt m_interrupt { *this };

    mutable std::mutex m_control_lock; // guards the fields below, up to m_irq_lock
    uint32_t m_device_feature_select { 0 };
    uint32_t m_driver_feature_select { 0 };
    uint64_t m_driver_features { 0 };
    uint8_t m_status { 0 }; // without NEEDS_RESET (m_needs_reset)
    uint16_t m_queue_select { 0 };
    bool m_active { false };
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
    std::optional<uint64_t> m_registered_base; // BAR 4 address the registrar was told about

    std::atomic<uint64_t> m_bad_accesses { 0 };
    std::atomic<uint64_t> m_rejected_writes { 0 };
    std::atomic<uint64_t> m_features_refused { 0 };
    std::atomic<uint64_t> m_needs_reset_count { 0 };
    std::atomic<uint64_t> m_bad_notifies { 0 };
};

} // namespace hako::devices::virtio
