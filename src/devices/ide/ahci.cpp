#include "devices/ide/ahci.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/ide/ahci_regs.h"

namespace hako::devices::ide {

using namespace ahci;

namespace {
constexpr uint32_t CLASS_AHCI = 0x010601; // mass storage, SATA, AHCI 1.0
constexpr uint8_t REVISION = 0x02;
constexpr uint32_t HBA_CAP = CAP_S64A | CAP_SNCQ | CAP_SAM | CAP_ISS_GEN2 | (SLOTS - 1) << CAP_NCS_SHIFT
    | (Ahci::PORTS - 1);
constexpr uint32_t PORTS_IMPLEMENTED = (1u << Ahci::PORTS) - 1;

pci::PciIdentity ahci_identity()
{
    pci::PciIdentity id;
    id.vendor_id = Ahci::VENDOR_ID;
    id.device_id = Ahci::DEVICE_ID;
    id.class_code = CLASS_AHCI;
    id.revision = REVISION;
    id.subsystem_vendor_id = 0x1af4; // as QEMU's ich9-ahci: Red Hat, QEMU
    id.subsystem_id = 0x1100;
    id.interrupt_pin = 1;
    return id;
}
} // namespace

Result<std::shared_ptr<Ahci>> Ahci::create(memory::GuestMemory const& mem,
    std::array<std::shared_ptr<IdeDrive>, PORTS> drives, std::shared_ptr<pci::MsiSink> msi)
{
    auto dev = std::make_shared<Ahci>(mem, drives);
    TRY(dev->add_bar(ABAR, pci::BarKind::Mem32, ABAR_SIZE));
    dev->m_msi = TRY(pci::MsiCapability::create(*dev, std::move(msi), 1));
    return dev;
}

Ahci::Ahci(memory::GuestMemory const& mem, std::array<std::shared_ptr<IdeDrive>, PORTS> const& drives)
    : PciDevice(ahci_identity())
{
    for (unsigned p = 0; p < PORTS; ++p)
        m_ports[p] = std::make_unique<AhciPort>(mem, drives[p], m_stats);
}

AhciStats Ahci::stats() const
{
    std::lock_guard lock(m_lock);
    return m_stats;
}

void Ahci::reset_device()
{
    std::lock_guard lock(m_lock);
    hba_reset();
}

void Ahci::config_written(uint16_t offset, size_t size)
{
    m_msi->config_written(offset, size);
    std::lock_guard lock(m_lock);
    update_interrupts(); // MSI enable moves the interrupt between INTx and messages
}

void Ahci::hba_reset()
{
    m_ghc = 0;
    m_is = 0;
    m_signalled = {};
    for (auto& port : m_ports)
        port->reset();
    update_interrupts();
}

void Ahci::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    if (bar != ABAR || offset >= ABAR_SIZE || data.size() > 8 || data.empty() || offset + data.size() > ABAR_SIZE) {
        std::fill(data.begin(), data.end(), 0xff);
        return;
    }
    std::lock_guard lock(m_lock);
    uint64_t const first = offset & ~uint64_t { 3 };
    std::array<uint8_t, 16> buf {};
    for (uint64_t at = first, i = 0; at < offset + data.size(); at += 4, i += 4)
        put_le32(buf.data() + i, read_dword(static_cast<uint32_t>(at)));
    std::copy_n(buf.begin() + static_cast<std::ptrdiff_t>(offset - first), data.size(), data.begin());
}

void Ahci::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    bool const dwords = (data.size() == 4 || data.size() == 8) && offset % 4 == 0;
    std::lock_guard lock(m_lock);
    if (bar != ABAR || !dwords || offset + data.size() > ABAR_SIZE) {
        ++m_stats.bad_accesses;
        HAKO_WARN_RATELIMITED("ahci: dropped {}-byte write at {:#x}", data.size(), offset);
        return;
    }
    bool const master = config_load(pci::PCI_COMMAND, 2) & pci::PCI_COMMAND_MASTER;
    for (auto& port : m_ports)
        port->set_bus_master(master);
    for (size_t i = 0; i < data.size(); i += 4)
        write_dword(static_cast<uint32_t>(offset + i), get_le32(data.data() + i));
    update_interrupts();
}

uint32_t Ahci::read_dword(uint32_t offset)
{
    if (offset >= PORT_BASE) {
        uint32_t const port = (offset - PORT_BASE) / PORT_SIZE;
        if (port >= PORTS)
            return 0; // reserved and vendor-specific space
        return m_ports[port]->read((offset - PORT_BASE) % PORT_SIZE);
    }
    switch (offset) {
    case CAP:
        return HBA_CAP;
    case GHC:
        return m_ghc | GHC_AE;
    case IS:
        return m_is;
    case PI:
        return PORTS_IMPLEMENTED;
    case VS:
        return VERSION_1_3;
    default:
        return 0; // CCC, enclosure management, CAP2, BOHC: nothing offered
    }
}

void Ahci::write_dword(uint32_t offset, uint32_t value)
{
    if (offset >= PORT_BASE) {
        uint32_t const port = (offset - PORT_BASE) / PORT_SIZE;
        if (port < PORTS)
            m_ports[port]->write((offset - PORT_BASE) % PORT_SIZE, value);
        else
            ++m_stats.bad_accesses;
        return;
    }
    switch (offset) {
    case GHC:
        if (value & GHC_HR) {
            hba_reset(); // completes at once: HR reads back 0
            return;
        }
        m_ghc = value & GHC_IE;
        return;
    case IS:
        m_is &= ~value;
        return;
    default:
        ++m_stats.bad_accesses; // read-only or unimplemented
        return;
    }
}

void Ahci::update_interrupts()
{
    bool message = false;
    for (unsigned p = 0; p < PORTS; ++p) {
        uint32_t const pending = m_ports[p]->pending();
        if (pending)
            m_is |= 1u << p; // level-like: set again after a clear while the port's cause is still there
        if (pending & ~m_signalled[p])
            message = true; // a new cause
        m_signalled[p] = pending;
    }
    bool const ie = m_ghc & GHC_IE;
    if (m_msi->enabled()) {
        set_intx(false);
        if (ie && message)
            m_msi->notify(0);
        return;
    }
    set_intx(ie && m_is != 0);
}

} // namespace hako::devices::ide
