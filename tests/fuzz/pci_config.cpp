// Fuzzes the PCI layer: a root with the i440FX host bridge, PIIX3, the PIIX4 PM function (01.3) and a test function with IO, 32-bit, 64-bit and
// ROM BARs plus MSI-X, wired to port I/O and MMIO buses through BusBarMapper, PciConfigIo (0xCF8/0xCFC) and ECAM
// (at 0xE0000000). The input is a sequence of 9-byte records: op, size, 3 address bytes, 4 value bytes.
// op % 8: 0/1 read/write CF8-CFF, 2/3 read/write ECAM, 4/5 read/write any port, 6/7 read/write MMIO at 0xFExxxxxx
// (where the fuzzer may place BARs); op & 8 toggles the test function's INTx, op & 16 signals an MSI-X vector.
// Invariants: read-only identity registers never change, the host bridge is always found by mechanism #1, the PM
// block the PIIX4 PM function reports is always a 64-byte aligned, non-zero I/O base.
#include <cstdint>
#include <cstdlib>

#include "base/bytes.h"
#include "bus/bus.h"
#include "devices/pci/bar_mapper.h"
#include "devices/pci/i440fx.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_root.h"
#include "devices/pci/piix3.h"
#include "devices/pci/piix4_pm.h"

using namespace hako;
using namespace hako::devices::pci;

namespace {
class NullIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        if (asserted == level) // the router only reports changes
            std::abort();
        level = asserted;
    }
    bool level { false };
};
class NullSink final : public MsiSink {
public:
    void deliver(uint64_t, uint32_t) override { ++count; }
    uint64_t count { 0 };
};
class FuzzFunction final : public PciDevice {
public:
    explicit FuzzFunction(std::shared_ptr<MsiSink> sink) : PciDevice(identity())
    {
        if (!add_bar(0, BarKind::Io, 0x40) || !add_bar(1, BarKind::Mem32, 0x1000)
            || !add_bar(2, BarKind::Mem64, 0x4000, Prefetchable::Yes) || !add_rom_bar(0x8000))
            std::abort();
        MsixCapability::Layout layout;
        layout.vectors = 8;
        layout.table_bar = 1;
        layout.pba_bar = 1;
        layout.pba_offset = 0x800;
        auto cap = MsixCapability::create(*this, std::move(sink), layout);
        if (!cap)
            std::abort();
        msix = std::move(*cap);
    }
    static PciIdentity identity()
    {
        PciIdentity id;
        id.vendor_id = 0x1af4;
        id.device_id = 0x1041;
        id.class_code = 0x020000;
        id.interrupt_pin = 1;
        return id;
    }
    std::string_view name() const override { return "fuzz-fn"; }
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data) override
    {
        if (!msix->bar_read(bar, offset, data))
            PciDevice::bar_read(bar, offset, data);
    }
    void bar_write(int bar, uint64_t offset, std::span<uint8_t const> data) override
    {
        if (!msix->bar_write(bar, offset, data))
            PciDevice::bar_write(bar, offset, data);
    }
    void config_written(uint16_t offset, size_t size) override { msix->config_written(offset, size); }
    std::unique_ptr<MsixCapability> msix;
};

constexpr uint64_t ECAM_BASE = 0xe0000000;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    bus::Bus pio(bus::Bus::Kind::Pio);
    bus::Bus mmio(bus::Bus::Kind::Mmio);
    auto mapper = std::make_shared<BusBarMapper>(pio, mmio);
    auto root = std::make_shared<PciRoot>(mapper);
    auto isa = std::make_shared<Piix3IsaBridge>();
    auto sink = std::make_shared<NullSink>();
    auto fn = std::make_shared<FuzzFunction>(sink);
    if (!root->add_device(std::make_shared<I440fxHostBridge>(), 0) || !root->add_device(isa, 1)
        || !root->add_device(fn, 3))
        std::abort();
    auto pm = std::make_shared<Piix4Pm>();
    if (!root->add_function(pm, 1, Piix4Pm::FUNCTION))
        std::abort();
    pm->set_pm_base_listener([](std::optional<uint16_t> base) {
        if (base && (*base == 0 || *base % Piix4Pm::PM_IO_SIZE != 0))
            std::abort();
    });
    root->set_intx_router(IntxRouter::create(isa, [](uint8_t) { return std::make_shared<NullIrq>(); }));
    auto io = std::make_shared<PciConfigIo>(root);
    auto ecam = std::make_shared<PciConfigMmio>(root, 1);
    if (!register_config_io(pio, io) || !mmio.insert(ECAM_BASE, ecam->window_size(), ecam))
        std::abort();

    bool intx = false;
    for (size_t i = 0; i + 9 <= size; i += 9) {
        uint8_t const op = data[i];
        size_t const len = size_t { 1 } << (data[i + 1] % 4);
        uint32_t const a = data[i + 2] | (uint32_t { data[i + 3] } << 8) | (uint32_t { data[i + 4] } << 16);
        uint8_t buf[8] = { data[i + 5], data[i + 6], data[i + 7], data[i + 8], data[i + 5], data[i + 6], 0, 0 };
        std::span<uint8_t> const rd(buf, len);
        std::span<uint8_t const> const wr(buf, len);
        switch (op % 8) {
        case 0: pio.read(0xcf8 + a % 8, rd); break;
        case 1: pio.write(0xcf8 + a % 8, wr); break;
        case 2: mmio.read(ECAM_BASE + (a & 0xfffff), rd); break;
        case 3: mmio.write(ECAM_BASE + (a & 0xfffff), wr); break;
        case 4: pio.read(a & 0xffff, rd); break;
        case 5: pio.write(a & 0xffff, wr); break;
        case 6: mmio.read(0xfe000000 + a, rd); break;
        case 7: mmio.write(0xfe000000 + a, wr); break;
        }
        if (op & 8) {
            intx = !intx;
            fn->set_intx(intx);
        }
        if (op & 16)
            fn->msix->notify(static_cast<uint16_t>(data[i + 8] % 10));
    }
    // Identity registers are read-only whatever the guest did.
    uint8_t id[4];
    root->config_read(0, 0, 0, 0, id);
    if (load_le(id) != 0x12378086)
        std::abort();
    root->config_read(0, 3, 0, 0, id);
    if (load_le(id) != 0x10411af4)
        std::abort();
    root->config_read(0, 1, Piix4Pm::FUNCTION, 0, id);
    if (load_le(id) != 0x71138086)
        std::abort();
    root->config_read(0, 1, 0, PCI_HEADER_TYPE, std::span<uint8_t>(id, 1));
    if (id[0] != 0x80)
        std::abort();
    return 0;
}
