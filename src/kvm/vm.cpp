#include "kvm/vm.h"

#include <cstring>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "base/log.h"
#include "kvm/abi.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"

namespace hako::kvm {

// Where KVM puts the real-mode TSS and identity map for Intel's unrestricted-guest workaround: just below the
// firmware at the top of 4 GiB (as QEMU does), inside the PCI hole so it never shadows RAM or a device.
constexpr uint64_t TSS_ADDR = 0xfeffd000;
constexpr uint64_t IDENTITY_MAP_ADDR = 0xfeffc000;

Result<void> Vm::map_memory(memory::GuestMemory const& mem)
{
    if (mem.regions().size() > FIRST_FLASH_SLOT)
        return Error(ErrorKind::InvalidArgument, fmt::format("{} memory regions: at most {}", mem.regions().size(),
            FIRST_FLASH_SLOT));
    uint32_t slot = 0;
    for (auto const& r : mem.regions()) {
        kvm_userspace_memory_region region {};
        region.slot = slot++;
        region.flags = r.kind == memory::RegionKind::Rom ? KVM_MEM_READONLY : 0;
        region.guest_phys_addr = r.base.value();
        region.memory_size = r.size;
        // SAFETY: the mapping belongs to `mem`, which the machine keeps alive for as long as this VM exists.
        region.userspace_addr = reinterpret_cast<uint64_t>(r.host);
        if (::ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_SET_USER_MEMORY_REGION at {}", r.base));
    }
    return ok();
}

Result<void> Vm::map_device_memory(uint32_t slot, uint64_t addr, uint64_t size, memory::GuestMemory const& mem,
    SlotAccess access)
{
    if (mem.regions().empty() || mem.regions().front().size < size || size == 0 || (addr | size) & 0xfff)
        return Error(ErrorKind::InvalidArgument, fmt::format("Device memory of {:#x} bytes at {:#x}", size, addr));
    kvm_userspace_memory_region region {};
    region.slot = slot;
    region.flags = access == SlotAccess::ReadOnly ? KVM_MEM_READONLY : 0;
    region.guest_phys_addr = addr;
    region.memory_size = size;
    // SAFETY: the mapping belongs to `mem`, owned by the device, which outlives the slot: the device's BAR mapper
    // removes the slot when the BAR is unmapped, which PciDevice's destructor does at the latest; a flash device
    // lives as long as the machine (and its VM).
    region.userspace_addr = reinterpret_cast<uint64_t>(mem.regions().front().host);
    if (::ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}", slot, addr));
    return ok();
}

Result<void> Vm::unmap_device_memory(uint32_t slot)
{
    kvm_userspace_memory_region region {};
    region.slot = slot; // memory_size 0 deletes the slot
    if (::ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_SET_USER_MEMORY_REGION deleting slot {}", slot));
    return ok();
}

Result<void> Vm::create_irqchip_and_pit()
{
    if (::ioctl(m_fd.get(), KVM_SET_TSS_ADDR, TSS_ADDR) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_TSS_ADDR");
    uint64_t identity = IDENTITY_MAP_ADDR;
    if (m_system.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0
        && ::ioctl(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_IDENTITY_MAP_ADDR");
    if (::ioctl(m_fd.get(), KVM_CREATE_IRQCHIP, 0) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_CREATE_IRQCHIP");
    kvm_pit_config pit {};
    pit.flags = KVM_PIT_SPEAKER_DUMMY; // port 0x61 handled in the kernel, no speaker
    if (::ioctl(m_fd.get(), KVM_CREATE_PIT2, &pit) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_CREATE_PIT2");
    return ok();
}

void Vm::set_irq_line(uint32_t gsi, bool level)
{
    kvm_irq_level irq {};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    if (::ioctl(m_fd.get(), KVM_IRQ_LINE, &irq) < 0)
        HAKO_WARN_RATELIMITED("KVM_IRQ_LINE {} failed: {}", gsi, std::strerror(errno));
}

void Vm::signal_msi(uint64_t address, uint32_t data)
{
    kvm_msi msi {};
    msi.address_lo = static_cast<uint32_t>(address);
    msi.address_hi = static_cast<uint32_t>(address >> 32);
    msi.data = data;
    if (::ioctl(m_fd.get(), KVM_SIGNAL_MSI, &msi) < 0)
        HAKO_WARN_RATELIMITED("KVM_SIGNAL_MSI {:#x}/{:#x} failed: {}", address, data, std::strerror(errno));
}

template<typename T>
static std::vector<uint8_t> bytes_of(T const& v)
{
    std::vector<uint8_t> out(sizeof(T));
    std::memcpy(out.data(), &v, sizeof(T));
    return out;
}

Result<void> Vm::save_reset_state()
{
    for (uint32_t chip : { 0u /* KVM_IRQCHIP_PIC_MASTER */, 1u /* KVM_IRQCHIP_PIC_SLAVE */, 2u /* KVM_IRQCHIP_IOAPIC */ }) {
        kvm_irqchip c {};
        c.chip_id = chip;
        if (::ioctl(m_fd.get(), KVM_GET_IRQCHIP, &c) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_GET_IRQCHIP");
        auto& dst = chip == KVM_IRQCHIP_PIC_MASTER ? m_saved_pic_master
            : chip == KVM_IRQCHIP_PIC_SLAVE        ? m_saved_pic_slave
                                                   : m_saved_ioapic;
        dst = bytes_of(c);
    }
    kvm_pit_state2 pit {};
    if (::ioctl(m_fd.get(), KVM_GET_PIT2, &pit) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_PIT2");
    m_saved_pit = bytes_of(pit);
    return ok();
}

Result<Vm::PicState> Vm::pic_state(bool slave) const
{
    kvm_irqchip c {};
    c.chip_id = slave ? KVM_IRQCHIP_PIC_SLAVE : KVM_IRQCHIP_PIC_MASTER;
    if (::ioctl(m_fd.get(), KVM_GET_IRQCHIP, &c) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_GET_IRQCHIP");
    auto const& p = c.chip.pic;
    return PicState { p.irr, p.imr, p.isr, p.irq_base, p.priority_add, p.auto_eoi != 0 };
}

Result<void> Vm::reset_platform()
{
    for (auto const* saved : { &m_saved_pic_master, &m_saved_pic_slave, &m_saved_ioapic }) {
        kvm_irqchip c {};
        std::memcpy(&c, saved->data(), sizeof c);
        if (::ioctl(m_fd.get(), KVM_SET_IRQCHIP, &c) < 0)
            return Error::from_errno(ErrorKind::Kvm, "KVM_SET_IRQCHIP");
    }
    kvm_pit_state2 pit {};
    std::memcpy(&pit, m_saved_pit.data(), sizeof pit);
    if (::ioctl(m_fd.get(), KVM_SET_PIT2, &pit) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_SET_PIT2");
    return ok();
}

Result<std::unique_ptr<Vcpu>> Vm::create_vcpu(uint32_t id)
{
    int fd = ::ioctl(m_fd.get(), KVM_CREATE_VCPU, id);
    if (fd < 0)
        return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_CREATE_VCPU {}", id));
    auto size = TRY(m_system.vcpu_mmap_size());
    return Vcpu::create(*this, id, UniqueFd(fd), size);
}

Result<void> Vm::add_ioeventfd(int fd, uint64_t addr, uint32_t len, bool pio, std::optional<uint64_t> datamatch)
{
    kvm_ioeventfd io {};
    io.addr = addr;
    io.len = len;
    io.fd = fd;
    io.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0);
    io.datamatch = datamatch.value_or(0);
    if (::ioctl(m_fd.get(), KVM_IOEVENTFD, &io) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_IOEVENTFD");
    return ok();
}

Result<void> Vm::remove_ioeventfd(int fd, uint64_t addr, uint32_t len, bool pio, std::optional<uint64_t> datamatch)
{
    kvm_ioeventfd io {};
    io.addr = addr;
    io.len = len;
    io.fd = fd;
    io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN | (pio ? KVM_IOEVENTFD_FLAG_PIO : 0)
        | (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0);
    io.datamatch = datamatch.value_or(0);
    if (::ioctl(m_fd.get(), KVM_IOEVENTFD, &io) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_IOEVENTFD (deassign)");
    return ok();
}

Result<void> Vm::add_irqfd(int fd, uint32_t gsi)
{
    kvm_irqfd irqfd {};
    irqfd.fd = static_cast<uint32_t>(fd);
    irqfd.gsi = gsi;
    if (::ioctl(m_fd.get(), KVM_IRQFD, &irqfd) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_IRQFD");
    return ok();
}

Result<void> Vm::remove_irqfd(int fd, uint32_t gsi)
{
    kvm_irqfd irqfd {};
    irqfd.fd = static_cast<uint32_t>(fd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    if (::ioctl(m_fd.get(), KVM_IRQFD, &irqfd) < 0)
        return Error::from_errno(ErrorKind::Kvm, "KVM_IRQFD (deassign)");
    return ok();
}

std::vector<GsiRoute> Vm::default_irqchip_routes()
{
    std::vector<GsiRoute> routes;
    for (uint32_t gsi = 0; gsi < 24; ++gsi) {
        routes.push_back(GsiRoute { .gsi = gsi, .kind = GsiRoute::Kind::Irqchip, .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi });
        if (gsi < 16)
            routes.push_back(GsiRoute { .gsi = gsi,
                .kind = GsiRoute::Kind::Irqchip,
                .irqchip = gsi < 8 ? uint32_t { KVM_IRQCHIP_PIC_MASTER } : uint32_t { KVM_IRQCHIP_PIC_SLAVE },
                .pin = gsi % 8 });
    }
    return routes;
}

Result<void> Vm::set_gsi_routing(std::span<GsiRoute const> routes)
{
    // struct kvm_irq_routing with its flexible array, laid out by hand (see abi.h).
    std::vector<uint8_t> buf(sizeof(abi::IrqRoutingHeader) + routes.size() * sizeof(kvm_irq_routing_entry));
    abi::IrqRoutingHeader header { static_cast<uint32_t>(routes.size()), 0 };
    std::memcpy(buf.data(), &header, sizeof(header));
    for (size_t i = 0; i < routes.size(); ++i) {
        kvm_irq_routing_entry e {};
        e.gsi = routes[i].gsi;
        if (routes[i].kind == GsiRoute::Kind::Irqchip) {
            e.type = KVM_IRQ_ROUTING_IRQCHIP;
            e.u.irqchip.irqchip = routes[i].irqchip;
            e.u.irqchip.pin = routes[i].pin;
        } else {
            e.type = KVM_IRQ_ROUTING_MSI;
            e.u.msi.address_lo = static_cast<uint32_t>(routes[i].address);
            e.u.msi.address_hi = static_cast<uint32_t>(routes[i].address >> 32);
            e.u.msi.data = routes[i].data;
        }
        std::memcpy(buf.data() + sizeof(header) + i * sizeof(e), &e, sizeof(e));
    }
    if (::ioctl(m_fd.get(), abi::SET_GSI_ROUTING, buf.data()) < 0)
        return Error::from_errno(ErrorKind::Kvm, fmt::format("KVM_SET_GSI_ROUTING ({} routes)", routes.size()));
    return ok();
}

} // namespace hako::kvm
