// Fuzzes the (transitional) virtio-pci transport with a virtio-rng behind it, as a hostile guest drives them:
// arbitrary configuration space accesses (MSI-X control, BARs, the PCI cfg access capability), BAR 4, BAR 1 and the
// legacy I/O BAR 0 accesses of any offset and size, guest RAM writes between them (rings, descriptors, indices),
// notifies by BAR write (modern and legacy port) and by process_notify(), and scripted modern and legacy bring-ups
// with fuzzer-chosen features and ring addresses (or PFN) to reach live states quickly, then mixed freely.
//
// Checked beyond "no crash, no hang, no sanitizer report": the work done per notify is bounded (at most Queue Size
// entropy requests of at most 64 KiB each), INTx is only driven on changes (StrictIrqLine), and reads always fill
// the buffer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio_pci.h"
#include "fuzz_fakes.h"

using namespace hako;
using namespace hako::devices;
using namespace hako::devices::virtio;
using memory::GuestAddr;

namespace {

constexpr size_t RAM_SIZE = 0x10000; // guest RAM at [0, 64 KiB): random ring addresses often land in it
constexpr size_t HEADER = 2;
constexpr size_t MAX_OPS = 384;

void check(bool ok)
{
    if (!ok)
        std::abort();
}

std::vector<uint8_t>& ram()
{
    static std::vector<uint8_t> buf(RAM_SIZE);
    return buf;
}

struct CountingSink final : pci::MsiSink {
    void deliver(uint64_t, uint32_t) override { ++messages; }
    uint64_t messages { 0 };
};

struct Entropy {
    uint64_t calls { 0 };
    uint64_t bytes { 0 };
};

struct Registrar final : NotifyRegistrar {
    void add_notify(uint16_t, uint64_t addr, uint32_t, NotifySpace space) override
    {
        check(space == NotifySpace::Memory || addr < 0x10000); // a port is below 64 KiB
        ++(space == NotifySpace::Io ? live_io : live);
    }
    void remove_notify(uint16_t, uint64_t, uint32_t, NotifySpace space) override
    {
        int& n = space == NotifySpace::Io ? live_io : live;
        check(n > 0);
        --n;
    }
    int live { 0 };
    int live_io { 0 };
};

size_t access_size(uint8_t b)
{
    static constexpr size_t SIZES[] = { 1, 2, 4, 8, 1, 2, 4, 3 };
    return SIZES[b & 7];
}

class Harness {
public:
    Harness(memory::GuestMemory const& mem, Entropy& entropy)
        : m_entropy(entropy)
        , m_irq(std::make_shared<fuzz::StrictIrqLine>())
        , m_sink(std::make_shared<CountingSink>())
        , m_registrar(std::make_shared<Registrar>())
    {
        auto* e = &m_entropy;
        m_rng = std::make_shared<VirtioRng>([e](std::span<uint8_t> out) {
            check(out.size() <= VirtioRng::MAX_REQUEST_BYTES);
            ++e->calls;
            e->bytes += out.size();
            std::memset(out.data(), 0x5a, out.size());
            return out.size();
        });
        auto dev = VirtioPciDevice::create(mem, m_rng, m_sink);
        check(dev.has_value());
        m_dev = *dev;
        m_dev->set_intx_line(m_irq);
        m_dev->set_notify_registrar(m_registrar);
    }

    void bar_write(int bar, uint64_t offset, size_t size, uint64_t value)
    {
        uint8_t buf[8] {};
        store_le(std::span<uint8_t>(buf, std::min<size_t>(size, 8)), value);
        m_dev->bar_write(bar, offset, std::span<uint8_t const>(buf, size));
    }
    void bar_read(int bar, uint64_t offset, size_t size)
    {
        uint8_t buf[8];
        std::memset(buf, 0x33, sizeof(buf));
        m_dev->bar_read(bar, offset, std::span<uint8_t>(buf, size));
    }
    void common(uint16_t off, size_t size, uint64_t value) { bar_write(VirtioPciDevice::MODERN_BAR, off, size, value); }

    /// Notifies and checks the work done is bounded.
    void notify(uint16_t queue, bool by_bar)
    {
        uint64_t const calls = m_entropy.calls;
        uint64_t const bytes = m_entropy.bytes;
        if (by_bar && (queue & 0x100))
            bar_write(VirtioPciDevice::LEGACY_BAR, VIRTIO_PCI_QUEUE_NOTIFY, 2, queue & 0xff);
        else if (by_bar)
            bar_write(VirtioPciDevice::MODERN_BAR, VirtioPciDevice::NOTIFY_CFG_OFFSET + uint64_t { queue } * 4, 2, queue);
        else
            m_dev->process_notify(queue);
        check(m_entropy.calls - calls <= VirtioRng::QUEUE_SIZE);
        check(m_entropy.bytes - bytes <= uint64_t { VirtioRng::QUEUE_SIZE } * VirtioRng::MAX_REQUEST_BYTES);
    }

    /// A driver's bring-up with fuzzer-chosen features, queue size and ring addresses.
    void bring_up(uint8_t const* a)
    {
        common(VIRTIO_PCI_COMMON_STATUS, 1, 0);
        common(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        uint64_t features = uint64_t { 1 } << VIRTIO_F_VERSION_1;
        if (a[0] & 1)
            features |= uint64_t { 1 } << VIRTIO_F_EVENT_IDX;
        if (a[0] & 2)
            features |= uint64_t { 1 } << VIRTIO_F_INDIRECT_DESC;
        if (a[0] & 4)
            features |= uint64_t { 1 } << (a[1] & 63); // maybe not offered
        common(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
        common(VIRTIO_PCI_COMMON_GF, 4, features & 0xffffffff);
        common(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
        common(VIRTIO_PCI_COMMON_GF, 4, features >> 32);
        common(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
        common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        common(VIRTIO_PCI_COMMON_Q_SIZE, 2, uint64_t { 1 } << (a[0] >> 4)); // 1 .. 32768 (most rejected above 256)
        auto addr = [&](size_t i) { return uint64_t { a[i] } << 8 | uint64_t { a[i + 1] } << 4 | (a[1] & 3) * 2; };
        common(VIRTIO_PCI_COMMON_Q_DESCLO, 4, addr(2));
        common(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, addr(3));
        common(VIRTIO_PCI_COMMON_Q_USEDLO, 4, addr(4));
        if (a[1] & 0x80)
            common(VIRTIO_PCI_COMMON_Q_USEDHI, 4, 1); // outside RAM
        common(VIRTIO_PCI_COMMON_Q_MSIX, 2, a[1] & 0x40 ? 1 : VIRTIO_MSI_NO_VECTOR);
        common(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        common(VIRTIO_PCI_COMMON_STATUS, 1,
            VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    }

    /// A legacy driver's bring-up: features as written, queue 0 by page frame number, DRIVER_OK.
    void legacy_bring_up(uint8_t const* a)
    {
        auto legacy = [&](uint16_t off, size_t size, uint64_t value) { bar_write(VirtioPciDevice::LEGACY_BAR, off, size, value); };
        legacy(VIRTIO_PCI_STATUS, 1, 0);
        legacy(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        legacy(VIRTIO_PCI_GUEST_FEATURES, 4, get_le32(a)); // maybe bits not offered
        legacy(VIRTIO_PCI_QUEUE_SEL, 2, a[4] & 0x80 ? a[4] & 3 : 0);
        // RAM is 16 pages and a 256-entry legacy queue takes 3: most PFNs fit, some do not.
        legacy(VIRTIO_PCI_QUEUE_PFN, 4, a[5] & 0x80 ? get_le32(a + 2) : a[5] & 0x0f);
        if (a[4] & 0x40) {
            legacy(VIRTIO_MSI_CONFIG_VECTOR, 2, 0);
            legacy(VIRTIO_MSI_QUEUE_VECTOR, 2, a[4] & 0x20 ? 1 : VIRTIO_MSI_NO_VECTOR);
        }
        legacy(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK
                | (a[4] & 0x10 ? VIRTIO_CONFIG_S_FEATURES_OK : 0));
    }

    std::shared_ptr<VirtioPciDevice>& dev() { return m_dev; }

private:
    Entropy& m_entropy;
    std::shared_ptr<fuzz::StrictIrqLine> m_irq;
    std::shared_ptr<CountingSink> m_sink;
    std::shared_ptr<Registrar> m_registrar;
    std::shared_ptr<VirtioRng> m_rng;
    std::shared_ptr<VirtioPciDevice> m_dev;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    if (size < HEADER)
        return 0;
    // Bytes 0-1: how much of the input seeds RAM (in 16-byte units); the rest is operations of 8 bytes.
    size_t const seed = std::min<size_t>((static_cast<size_t>(data[0]) | static_cast<size_t>(data[1] & 0x0f) << 8) * 16,
        size - HEADER);
    std::fill(ram().begin(), ram().end(), 0);
    std::memcpy(ram().data(), data + HEADER, std::min(seed, RAM_SIZE));
    size_t pos = HEADER + seed;

    auto mem = memory::GuestMemory::from_buffers({ { GuestAddr(0), std::span<uint8_t>(ram()) } });
    if (!mem)
        return 0;
    Entropy entropy;
    Harness h(*mem, entropy);
    auto& dev = *h.dev();

    for (size_t ops = 0; ops < MAX_OPS && pos + 8 <= size; ++ops, pos += 8) {
        uint8_t const* a = data + pos + 1;
        uint8_t const op = data[pos];
        uint64_t const value = get_le32(a + 3) | uint64_t { get_le16(a + 5) } << 32;
        switch (op & 15) {
        case 0: { // configuration space write, anywhere (BARs, command, MSI-X control, cfg access capability)
            size_t const n = access_size(a[1]);
            uint8_t buf[8] {};
            store_le(std::span<uint8_t>(buf, std::min<size_t>(n, 8)), value);
            dev.config_write(a[0], std::span<uint8_t const>(buf, n));
            break;
        }
        case 1: { // configuration space write inside the PCI cfg access capability
            uint16_t const at = static_cast<uint16_t>(dev.pci_cfg_cap_offset() + (a[0] % 20));
            size_t const n = access_size(a[1]) > 4 ? 4 : access_size(a[1]);
            uint8_t buf[4] {};
            store_le(std::span<uint8_t>(buf, n), value);
            dev.config_write(at, std::span<uint8_t const>(buf, n));
            break;
        }
        case 2: {
            uint8_t buf[8];
            dev.config_read(a[0], std::span<uint8_t>(buf, access_size(a[1])));
            break;
        }
        case 3: // common configuration write at a field offset
        case 4:
            h.bar_write(VirtioPciDevice::MODERN_BAR, a[0] % 0x40, access_size(a[1]), value);
            break;
        case 5: // BAR 4 write anywhere
            h.bar_write(VirtioPciDevice::MODERN_BAR, get_le16(a) % (VirtioPciDevice::MODERN_BAR_SIZE + 16), access_size(a[2]), value);
            break;
        case 6: // BAR 4 read anywhere (includes the ISR read-to-clear)
            h.bar_read(VirtioPciDevice::MODERN_BAR, get_le16(a) % (VirtioPciDevice::MODERN_BAR_SIZE + 16), access_size(a[2]));
            break;
        case 7: // BAR 1 (MSI-X table and PBA) and other BARs; half the time the legacy I/O BAR 0
            if (a[3] & 1) {
                uint64_t const off = a[0] % (VirtioPciDevice::LEGACY_BAR_MIN_SIZE + 8);
                if (a[2] & 1)
                    h.bar_write(VirtioPciDevice::LEGACY_BAR, off, access_size(a[2] >> 1), value);
                else
                    h.bar_read(VirtioPciDevice::LEGACY_BAR, off, access_size(a[2] >> 1));
                if (a[3] & 2)
                    h.legacy_bring_up(a);
            } else if (a[2] & 1)
                h.bar_write(a[2] >> 5, get_le16(a) % 0x1010, access_size(a[2] >> 1), value);
            else
                h.bar_read(a[2] >> 5, get_le16(a) % 0x1010, access_size(a[2] >> 1));
            break;
        case 8: // the guest writes RAM between device operations
        case 9: {
            size_t const off = get_le16(a) % (RAM_SIZE - 4);
            put_le32(&ram()[off], static_cast<uint32_t>(value));
            break;
        }
        case 10:
        case 11:
            h.notify(static_cast<uint16_t>((a[0] & 1) | (a[1] & 1) << 8), true); // bit 8: by the legacy port
            break;
        case 12:
            h.notify(a[0] % 3, false);
            break;
        case 13:
            if (a[6] & 1)
                h.legacy_bring_up(a);
            else
                h.bring_up(a);
            break;
        case 14: // device status write (including reset)
            h.bar_write(VirtioPciDevice::MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, a[0] & 0x0f ? a[0] : 0);
            break;
        case 15: // a descriptor at an index, as a driver would write it
        {
            size_t const off = (a[0] % 64) * 16u + (static_cast<size_t>(a[1]) << 8) % (RAM_SIZE - 0x400);
            put_le64(&ram()[off], get_le16(a + 2) % RAM_SIZE);
            put_le32(&ram()[off + 8], a[4] | uint32_t { a[5] } << 8);
            put_le16(&ram()[off + 12], a[6] & 7);
            put_le16(&ram()[off + 14], a[6] >> 3);
            break;
        }
        }
    }
    return 0;
}
