// E1000: creation, the register file, interrupts and statistics. Transmit is in e1000_tx.cpp, receive in
// e1000_rx.cpp.
#include "devices/net/e1000.h"

#include <algorithm>

#include "base/bytes.h"
#include "base/log.h"
#include "devices/net/nic_common.h"

namespace hako::devices::net {

using namespace e1000;

namespace {

constexpr uint32_t CLASS_ETHERNET = 0x020000;
constexpr uint32_t PBA_DEFAULT = 0x00100030; // 48 KiB receive, 16 KiB transmit packet buffer
constexpr uint32_t LEDCTL_DEFAULT = 0x07068302;
constexpr uint32_t VET_DEFAULT = 0x8100;
constexpr uint32_t RXCSUM_DEFAULT = RXCSUM_IPOFL | RXCSUM_TUOFL;
constexpr uint32_t EECD_FWE_DISABLED = 1u << 4;
constexpr uint32_t PBM_START = 0x10000; // packet buffer memory, 64 KiB, readable and writable for diagnostics

bool in_table(uint32_t offset, uint32_t base, uint32_t entries, uint32_t stride = 4)
{
    return offset >= base && offset < base + entries * stride && (offset - base) % stride == 0;
}

/// Write mask of a register that is plain storage; 0 for registers that are not (special, read-only or unknown).
uint32_t storage_mask(uint32_t offset)
{
    switch (offset) {
    case CTRL_EXT: case FLA: case FCAL: case FCT: case FCTTV: case TXCW: case TIPG: case AIFS: case LEDCTL: case PBA:
    case FCRTL: case FCRTH: case RDFH: case RDFT: case RDFHS: case RDFTS: case RDFPC: case RDBAH: case RDTR:
    case RXDCTL: case RADV: case RSRPD: case TXDMAC: case TDFH: case TDFT: case TDFHS: case TDFTS: case TDFPC:
    case TDBAH: case TIDV: case TXDCTL: case TADV: case TSPMT: case WUC: case WUFC: case WUS: case MANC: case IPAV:
    case WUPL: case RXCSUM:
        return 0xffffffff;
    case FCAH: case VET:
        return 0xffff;
    case RDBAL: case TDBAL:
        return 0xfffffff0; // 16-byte aligned
    case RDLEN: case TDLEN:
        return 0x000fff80; // a multiple of 128 bytes
    case RDH: case RDT: case TDH: case TDT:
        return 0xffff;
    case ITR:
        return ITR_INTERVAL_MASK;
    default:
        break;
    }
    if (in_table(offset, MTA, MTA_ENTRIES) || in_table(offset, VFTA, VFTA_ENTRIES))
        return 0xffffffff;
    if (offset >= RA && offset < RA + 8 * RA_ENTRIES)
        return (offset & 4) ? (RAH_AV | 0x3ffff) : 0xffffffff; // RAH: address high, AS, AV
    if (in_table(offset, IP4AT, 4, 8) || in_table(offset, IP6AT, 4) || in_table(offset, WUPM, 32)
        || in_table(offset, FFLT, 4, 8) || in_table(offset, FFMT, 128, 8) || in_table(offset, FFVT, 128, 8))
        return 0xffffffff;
    if (offset >= PBM_START && offset < MMIO_SIZE)
        return 0xffffffff;
    return 0;
}

} // namespace

Result<std::shared_ptr<E1000>> E1000::create(memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, E1000Options options)
{
    if (!backend)
        return Error(ErrorKind::InvalidArgument, "e1000: no network backend");
    auto dev = std::make_shared<E1000>(Passkey {}, mem, std::move(backend), mac, std::move(options));
    TRY(dev->add_bar(MMIO_BAR, pci::BarKind::Mem32, MMIO_SIZE));
    TRY(dev->add_bar(IO_BAR, pci::BarKind::Io, IO_BAR_SIZE));
    TRY(finish_nic(dev, *dev->m_backend, dev->m_option_rom.size())); // last: receive() may run from here on
    return dev;
}

static pci::PciIdentity identity()
{
    pci::PciIdentity id;
    id.vendor_id = E1000::VENDOR_ID;
    id.device_id = E1000::DEVICE_ID;
    id.class_code = CLASS_ETHERNET;
    id.revision = E1000::REVISION;
    id.subsystem_vendor_id = E1000::SUBSYSTEM_VENDOR_ID;
    id.subsystem_id = E1000::SUBSYSTEM_ID;
    id.interrupt_pin = 1;
    return id;
}

E1000::E1000(Passkey, memory::GuestMemory const& mem, std::shared_ptr<hako::net::Backend> backend,
    hako::net::MacAddress mac, E1000Options options)
    : PciDevice(identity())
    , m_mem(mem)
    , m_backend(std::move(backend))
    , m_mac(mac)
    , m_option_rom(std::move(options.option_rom))
    , m_loop(options.loop)
    , m_clock_ns(std::move(options.clock_ns))
    , m_regs(MMIO_SIZE / 4, 0)
    , m_eeprom(mac, DEVICE_ID, SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID)
    , m_tx_buf(TX_PACKET_MAX)
    , m_tx_frame(TX_FRAME_MAX)
    , m_tx_wire(TX_FRAME_MAX + 4)
    , m_rx_buf(RX_FRAME_MAX + 4)
{
    std::lock_guard lock(m_state_lock);
    reset_locked();
}

E1000::~E1000()
{
    // Waits for a delivery in progress; afterwards the backend never calls receive() again.
    m_backend->set_receiver({});
}

E1000Stats E1000::stats() const
{
    std::lock_guard lock(m_state_lock);
    E1000Stats s = m_stats;
    s.eeprom_unsupported = m_eeprom.unsupported_commands();
    return s;
}

void E1000::reset_device()
{
    std::lock_guard lock(m_state_lock);
    reset_locked();
}

void E1000::reset_locked()
{
    std::fill(m_regs.begin(), m_regs.end(), 0);
    reg(CTRL) = CTRL_FD | CTRL_ASDE | CTRL_SLU | CTRL_SPEED_1000;
    reg(EECD) = EECD_FWE_DISABLED;
    reg(PBA) = PBA_DEFAULT;
    reg(LEDCTL) = LEDCTL_DEFAULT;
    reg(VET) = VET_DEFAULT;
    reg(RXCSUM) = RXCSUM_DEFAULT;
    // The receive address 0 is loaded from the EEPROM (SDM 5.6.1).
    reg(RA) = static_cast<uint32_t>(m_mac[0]) | static_cast<uint32_t>(m_mac[1]) << 8
        | static_cast<uint32_t>(m_mac[2]) << 16 | static_cast<uint32_t>(m_mac[3]) << 24;
    reg(RA + 4) = static_cast<uint32_t>(m_mac[4]) | static_cast<uint32_t>(m_mac[5]) << 8 | RAH_AV;
    m_eeprom.reset_interface();
    m_phy.reset();
    m_icr = 0;
    m_ims = 0;
    m_ioaddr = 0;
    m_have_last_irq = false;
    m_rx_starved = false;
    m_hw_stats.fill(0);
    m_tx_ctx = {};
    m_tx = {};
    update_irq();
}

void E1000::bad_access(std::string_view what, uint64_t offset, size_t size)
{
    ++m_stats.bad_accesses;
    HAKO_WARN_RATELIMITED("e1000: {} at offset {:#x} ({} bytes)", what, offset, size);
}

// --- BAR accesses ---

void E1000::bar_read(int bar, uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (bar == pci::ROM_BAR) {
        read_option_rom(m_option_rom, offset, data);
        return;
    }
    std::lock_guard lock(m_state_lock);
    size_t const size = data.size();
    if (bar == IO_BAR) {
        if (size != 4 || (offset != IOADDR && offset != IODATA)) {
            bad_access("I/O read", offset, size);
        } else if (offset == IOADDR) {
            store_le(data, m_ioaddr);
        } else if (m_ioaddr < MMIO_SIZE && m_ioaddr % 4 == 0) {
            store_le(data, read_reg(m_ioaddr));
        } else {
            bad_access("IODATA read through IOADDR", m_ioaddr, 4);
        }
        return;
    }
    if (bar != MMIO_BAR || offset >= MMIO_SIZE || size == 0 || size > 8 || offset + size > MMIO_SIZE) {
        bad_access("read", offset, size);
        return;
    }
    if (size == 8 && offset % 8 == 0) {
        store_le(data.first(4), read_reg(static_cast<uint32_t>(offset)));
        store_le(data.subspan(4), read_reg(static_cast<uint32_t>(offset + 4)));
        return;
    }
    uint64_t const dword = offset & ~uint64_t { 3 };
    if (offset + size > dword + 4) {
        bad_access("read across a register", offset, size);
        return;
    }
    uint32_t const v = read_reg(static_cast<uint32_t>(dword));
    store_le(data, v >> (8 * (offset - dword)));
}

void E1000::bar_write(int bar, uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_state_lock);
    size_t const size = data.size();
    if (bar == IO_BAR) {
        if (size != 4 || (offset != IOADDR && offset != IODATA)) {
            bad_access("I/O write", offset, size);
        } else if (offset == IOADDR) {
            m_ioaddr = static_cast<uint32_t>(load_le(data));
        } else if (m_ioaddr < MMIO_SIZE && m_ioaddr % 4 == 0) {
            write_reg(m_ioaddr, static_cast<uint32_t>(load_le(data)));
        } else {
            bad_access("IODATA write through IOADDR", m_ioaddr, 4);
        }
        return;
    }
    if (bar != MMIO_BAR || offset >= MMIO_SIZE || offset + size > MMIO_SIZE) {
        bad_access("write", offset, size);
        return;
    }
    if (size == 4 && offset % 4 == 0) {
        write_reg(static_cast<uint32_t>(offset), static_cast<uint32_t>(load_le(data)));
    } else if (size == 8 && offset % 8 == 0) {
        write_reg(static_cast<uint32_t>(offset), static_cast<uint32_t>(load_le(data.first(4))));
        write_reg(static_cast<uint32_t>(offset + 4), static_cast<uint32_t>(load_le(data.subspan(4))));
    } else {
        bad_access("write of a size other than a dword", offset, size);
    }
}

// --- Registers ---

uint32_t E1000::read_reg(uint32_t offset)
{
    if (offset >= STATS_START && offset < STATS_END) {
        uint32_t const i = (offset - STATS_START) / 4;
        uint32_t const v = m_hw_stats[i];
        // 32-bit counters clear on read; a 64-bit counter (low, high) clears when its high dword is read.
        bool const low_half = i == STAT_GORCL || i == STAT_GOTCL || i == STAT_TORL || i == STAT_TOTL;
        bool const high_half = i == STAT_GORCH || i == STAT_GOTCH || i == STAT_TORH || i == STAT_TOTH;
        if (high_half) {
            m_hw_stats[i - 1] = 0;
            m_hw_stats[i] = 0;
        } else if (!low_half) {
            m_hw_stats[i] = 0;
        }
        return v;
    }
    switch (offset) {
    case CTRL:
    case EERD:
    case MDIC:
    case RCTL:
    case TCTL:
        return reg(offset);
    case STATUS:
        return STATUS_FD | STATUS_LU | STATUS_SPEED_1000 | STATUS_ASDV_1000;
    case EECD: {
        uint32_t v = (reg(EECD) & EECD_WRITABLE) | EECD_PRES;
        if (v & EECD_REQ)
            v |= EECD_GNT;
        if (m_eeprom.data_out())
            v |= EECD_DO;
        return v;
    }
    case ICR: {
        uint32_t const v = m_icr;
        m_icr = 0;
        update_irq();
        return v;
    }
    case IMS:
        return m_ims;
    case ICS:
    case IMC:
        return 0; // write-only
    case RXCW:
        return 0;
    default:
        break;
    }
    if (storage_mask(offset))
        return reg(offset);
    bad_access("read of an unknown register", offset, 4);
    return 0xffffffff;
}

void E1000::write_reg(uint32_t offset, uint32_t value)
{
    switch (offset) {
    case CTRL:
        if (value & CTRL_RST) {
            reset_locked(); // self-clearing; the PCI configuration stays
            return;
        }
        if ((value & CTRL_PHY_RST) && !(reg(CTRL) & CTRL_PHY_RST))
            m_phy.reset();
        reg(CTRL) = value;
        return;
    case STATUS:
    case RXCW:
        return; // read-only
    case EECD:
        reg(EECD) = value & EECD_WRITABLE;
        m_eeprom.write_pins(value);
        return;
    case EERD:
        if (value & EERD_START) {
            uint32_t const addr = (value >> EERD_ADDR_SHIFT) & 0xff;
            uint32_t const data = addr < EEPROM_WORDS ? m_eeprom.word(addr) : 0;
            reg(EERD) = EERD_DONE | addr << EERD_ADDR_SHIFT | data << EERD_DATA_SHIFT;
        } else {
            reg(EERD) = value & ~EERD_DONE;
        }
        return;
    case MDIC: {
        unsigned const phy = (value >> MDIC_PHY_SHIFT) & 0x1f;
        unsigned const r = (value >> MDIC_REG_SHIFT) & 0x1f;
        uint32_t const op = value & MDIC_OP_MASK;
        uint32_t result = value & ~(MDIC_READY | MDIC_ERROR);
        if (phy != PHY_ADDRESS || (op != MDIC_OP_READ && op != MDIC_OP_WRITE)) {
            result |= MDIC_ERROR;
        } else if (op == MDIC_OP_READ) {
            result = (result & ~MDIC_DATA_MASK) | m_phy.read(r);
        } else if (m_phy.write(r, static_cast<uint16_t>(value & MDIC_DATA_MASK))) {
            set_cause(ICR_LSC); // autonegotiation restarted and (at once) completed
        }
        reg(MDIC) = result | MDIC_READY;
        if (value & MDIC_INT_EN)
            set_cause(ICR_MDAC);
        return;
    }
    case ICR:
        m_icr &= ~value; // write 1 to clear
        update_irq();
        return;
    case ICS:
        set_cause(value);
        return;
    case IMS:
        m_ims |= value & ICR_VALID;
        update_irq();
        return;
    case IMC:
        m_ims &= ~value;
        update_irq();
        return;
    case RCTL: {
        bool const was_enabled = reg(RCTL) & RCTL_EN;
        reg(RCTL) = value;
        if ((value & RCTL_EN) && !was_enabled && m_rx_starved) {
            m_rx_starved = false;
            m_backend->rx_buffers_available();
        }
        return;
    }
    case RDT:
        reg(RDT) = value & 0xffff;
        if (m_rx_starved) {
            m_rx_starved = false;
            m_backend->rx_buffers_available();
        }
        return;
    case TCTL:
        reg(TCTL) = value;
        if (value & TCTL_EN)
            process_tx();
        return;
    case TDT:
        reg(TDT) = value & 0xffff;
        if (reg(TCTL) & TCTL_EN)
            process_tx();
        return;
    default:
        break;
    }
    if (offset >= STATS_START && offset < STATS_END)
        return; // read-only counters
    if (uint32_t const mask = storage_mask(offset)) {
        reg(offset) = value & mask;
        return;
    }
    bad_access("write of an unknown register", offset, 4);
}

// --- Interrupts ---

void E1000::set_cause(uint32_t causes)
{
    m_icr |= causes & ICR_VALID;
    update_irq();
}

void E1000::update_irq()
{
    bool const want = (m_icr & m_ims) != 0;
    if (!want || m_irq_level) {
        if (!want && m_irq_level) {
            m_irq_level = false;
            set_intx(false);
        }
        return;
    }
    uint64_t const interval = static_cast<uint64_t>(reg(ITR) & ITR_INTERVAL_MASK) * ITR_UNIT_NS;
    int64_t const now = m_clock_ns ? m_clock_ns() : 0;
    if (interval && m_clock_ns && m_have_last_irq && now - m_last_irq_ns >= 0
        && static_cast<uint64_t>(now - m_last_irq_ns) < interval) {
        // Throttled: assert when the interval since the last assertion ends.
        if (!m_itr_timer_armed) {
            ++m_stats.itr_deferred;
            if (m_loop) {
                m_itr_timer_armed = true;
                auto const delay = std::chrono::nanoseconds(static_cast<int64_t>(interval) - (now - m_last_irq_ns));
                std::weak_ptr<PciDevice> weak = weak_from_this();
                m_loop->add_timer(delay, std::chrono::nanoseconds(0), [weak] {
                    if (auto d = weak.lock())
                        static_cast<E1000&>(*d).itr_timer_expired();
                });
            }
        }
        return;
    }
    m_irq_level = true;
    m_have_last_irq = true;
    m_last_irq_ns = now;
    ++m_stats.interrupts;
    set_intx(true);
}

void E1000::itr_timer_expired()
{
    std::lock_guard lock(m_state_lock);
    m_itr_timer_armed = false;
    update_irq();
}

// --- Statistics registers ---

void E1000::stat_add(uint32_t index, uint32_t n)
{
    uint32_t& c = m_hw_stats[index];
    c = c > UINT32_MAX - n ? UINT32_MAX : c + n; // the counters stick at their maximum
}

void E1000::stat_add64(uint32_t low_index, uint64_t n)
{
    uint64_t v = (static_cast<uint64_t>(m_hw_stats[low_index + 1]) << 32 | m_hw_stats[low_index]) + n;
    m_hw_stats[low_index] = static_cast<uint32_t>(v);
    m_hw_stats[low_index + 1] = static_cast<uint32_t>(v >> 32);
}

bool E1000::is_broadcast(std::span<uint8_t const> frame)
{
    return frame.size() >= 6 && std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xff; });
}

void E1000::stat_destination(std::span<uint8_t const> frame, uint32_t broadcast_index, uint32_t multicast_index)
{
    if (!frame.empty() && (frame[0] & 1))
        stat_add(is_broadcast(frame) ? broadcast_index : multicast_index);
}

void E1000::stat_size_bucket(uint32_t first_index, size_t wire_len)
{
    // 64, 65-127, 128-255, 256-511, 512-1023, 1024-max bytes (FCS included).
    uint32_t bucket = 5;
    if (wire_len <= 64)
        bucket = 0;
    else if (wire_len < 128)
        bucket = 1;
    else if (wire_len < 256)
        bucket = 2;
    else if (wire_len < 512)
        bucket = 3;
    else if (wire_len < 1024)
        bucket = 4;
    stat_add(first_index + bucket);
}

} // namespace hako::devices::net
