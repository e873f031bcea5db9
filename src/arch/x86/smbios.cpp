#include "arch/x86/smbios.h"

#include <algorithm>

namespace hako::arch::x86 {

namespace {

constexpr uint8_t SMBIOS_MAJOR = 2;
constexpr uint8_t SMBIOS_MINOR = 8;
constexpr size_t ENTRY_POINT_LEN = 31;
constexpr uint64_t MEMORY_DEVICE_MAX = 16ull << 30; // one type 17 per 16 GiB, as QEMU

/// Builds the structure table: each structure's formatted area, then its strings.
class TableWriter {
public:
    /// Starts a structure of `type` whose formatted area is `length` bytes; \return its handle.
    uint16_t begin(uint8_t type, uint8_t length)
    {
        finish();
        m_start = m_out.size();
        m_out.resize(m_start + length, 0);
        m_out[m_start] = type;
        m_out[m_start + 1] = length;
        uint16_t const handle = m_next_handle++;
        put16(2, handle);
        m_strings.clear();
        ++m_count;
        return handle;
    }
    void put8(size_t off, uint8_t v) { m_out[m_start + off] = v; }
    void put16(size_t off, uint16_t v)
    {
        m_out[m_start + off] = static_cast<uint8_t>(v);
        m_out[m_start + off + 1] = static_cast<uint8_t>(v >> 8);
    }
    void put32(size_t off, uint32_t v)
    {
        put16(off, static_cast<uint16_t>(v));
        put16(off + 2, static_cast<uint16_t>(v >> 16));
    }
    void put64(size_t off, uint64_t v)
    {
        put32(off, static_cast<uint32_t>(v));
        put32(off + 4, static_cast<uint32_t>(v >> 32));
    }
    /// Sets the string field at `off` to `text` (string number n; 0 = none for an empty text).
    void str(size_t off, std::string const& text)
    {
        if (text.empty()) {
            put8(off, 0);
            return;
        }
        m_strings.push_back(text);
        put8(off, static_cast<uint8_t>(m_strings.size()));
    }
    std::vector<uint8_t> done(uint16_t& count, uint16_t& max_size)
    {
        finish();
        count = m_count;
        max_size = m_max;
        return std::move(m_out);
    }

private:
    void finish()
    {
        if (m_count == 0 || m_finished == m_count)
            return;
        m_finished = m_count;
        for (auto const& s : m_strings) {
            m_out.insert(m_out.end(), s.begin(), s.end());
            m_out.push_back(0);
        }
        if (m_strings.empty())
            m_out.push_back(0);
        m_out.push_back(0);
        m_max = std::max<uint16_t>(m_max, static_cast<uint16_t>(m_out.size() - m_start));
    }

    std::vector<uint8_t> m_out;
    std::vector<std::string> m_strings;
    size_t m_start { 0 };
    uint16_t m_next_handle { 0x100 };
    uint16_t m_count { 0 };
    uint16_t m_finished { 0 };
    uint16_t m_max { 0 };
};

uint8_t checksum(std::vector<uint8_t> const& b, size_t from, size_t to)
{
    uint8_t sum = 0;
    for (size_t i = from; i < to; ++i)
        sum = static_cast<uint8_t>(sum + b[i]);
    return static_cast<uint8_t>(-sum);
}

} // namespace

SmbiosBlobs build_smbios(SmbiosConfig const& c)
{
    TableWriter t;

    // Type 1: system information (2.8: 27 bytes).
    t.begin(1, 27);
    t.str(4, c.manufacturer);
    t.str(5, c.product);
    t.str(6, c.version);
    t.str(7, c.serial);
    for (size_t i = 0; i < 16; ++i)
        t.put8(8 + i, c.uuid[i]);
    t.put8(24, 6); // wake-up type: power switch
    t.str(25, "");
    t.str(26, "Virtual Machine");

    // Type 3: chassis (21 bytes: no contained elements).
    t.begin(3, 21);
    t.str(4, c.manufacturer);
    t.put8(5, 1); // other
    t.str(6, c.version);
    t.put8(9, 3);  // boot-up state: safe
    t.put8(10, 3); // power supply state: safe
    t.put8(11, 3); // thermal state: safe
    t.put8(12, 2); // security: unknown

    // Type 4: one processor per vCPU (2.6 layout: 42 bytes).
    for (unsigned i = 0; i < c.cpus; ++i) {
        t.begin(4, 42);
        t.str(4, "CPU " + std::to_string(i));
        t.put8(5, 3);    // central processor
        t.put8(6, 0xfe); // family: see family 2
        t.str(7, c.manufacturer);
        t.put32(8, c.cpuid_signature);
        t.put32(12, c.cpuid_features);
        t.str(0x10, "hako vCPU");
        t.put16(0x14, 2000); // max speed (MHz): QEMU's placeholder
        t.put16(0x16, 2000);
        t.put8(0x18, 0x41); // socket populated, CPU enabled
        t.put8(0x19, 1);    // upgrade: other
        t.put16(0x1a, 0xffff);
        t.put16(0x1c, 0xffff);
        t.put16(0x1e, 0xffff);
        t.put8(0x23, 1); // cores
        t.put8(0x24, 1); // cores enabled
        t.put8(0x25, 1); // threads
        t.put16(0x26, 0x02); // characteristics: unknown
        t.put16(0x28, 0x01); // family 2: other
    }

    // Type 16: the physical memory array (2.7: 23 bytes).
    uint64_t const total = c.ram.low_end + c.ram.high_size;
    uint64_t const devices = std::max<uint64_t>(1, (total + MEMORY_DEVICE_MAX - 1) / MEMORY_DEVICE_MAX);
    uint16_t const array = t.begin(16, 23);
    t.put8(4, 1); // location: other
    t.put8(5, 3); // use: system memory
    t.put8(6, 6); // error correction: multi-bit ECC (QEMU reports the same)
    uint64_t const total_kib = total >> 10;
    if (total_kib < 0x80000000ull) {
        t.put32(7, static_cast<uint32_t>(total_kib));
    } else {
        t.put32(7, 0x80000000u);
        t.put64(0x0f, total);
    }
    t.put16(0x0b, 0xfffe); // no error information
    t.put16(0x0d, static_cast<uint16_t>(devices));

    // Type 17: memory devices (2.8: 40 bytes).
    uint64_t left = total;
    for (uint64_t i = 0; i < devices; ++i) {
        uint64_t const bytes = std::min(left, MEMORY_DEVICE_MAX);
        left -= bytes;
        t.begin(17, 40);
        t.put16(4, array);
        t.put16(6, 0xfffe);
        t.put16(8, 0xffff);  // total width: unknown
        t.put16(10, 0xffff); // data width: unknown
        uint64_t const mib = bytes >> 20;
        if (mib < 0x7fff) {
            t.put16(12, static_cast<uint16_t>(mib));
        } else {
            t.put16(12, 0x7fff);
            t.put32(0x1c, static_cast<uint32_t>(mib));
        }
        t.put8(14, 9); // form factor: DIMM
        t.str(0x10, "DIMM " + std::to_string(i));
        t.put8(0x12, 7);     // type: RAM
        t.put16(0x13, 2);    // detail: other
        t.str(0x17, c.manufacturer);
    }

    // Type 19: one mapped address range per RAM region (2.7: 31 bytes).
    auto mapped = [&t, array](uint64_t start, uint64_t end) {
        t.begin(19, 31);
        uint64_t const last = end - 1;
        if ((last >> 10) < 0xffffffffull) {
            t.put32(4, static_cast<uint32_t>(start >> 10));
            t.put32(8, static_cast<uint32_t>(last >> 10));
        } else {
            t.put32(4, 0xffffffffu);
            t.put32(8, 0xffffffffu);
            t.put64(0x0f, start);
            t.put64(0x17, last);
        }
        t.put16(12, array);
        t.put8(14, 1); // partition width
    };
    if (c.ram.low_end)
        mapped(0, c.ram.low_end);
    if (c.ram.high_size)
        mapped(FOUR_GIB, FOUR_GIB + c.ram.high_size);

    // Type 32: system boot information (11 bytes): no errors.
    t.begin(32, 11);
    // Type 127: end of table.
    t.begin(127, 4);

    uint16_t count = 0, max_size = 0;
    SmbiosBlobs out;
    out.tables = t.done(count, max_size);

    auto& a = out.anchor;
    a.assign(ENTRY_POINT_LEN, 0);
    std::copy_n("_SM_", 4, a.begin());
    a[5] = ENTRY_POINT_LEN;
    a[6] = SMBIOS_MAJOR;
    a[7] = SMBIOS_MINOR;
    a[8] = static_cast<uint8_t>(max_size);
    a[9] = static_cast<uint8_t>(max_size >> 8);
    std::copy_n("_DMI_", 5, a.begin() + 16);
    a[22] = static_cast<uint8_t>(out.tables.size());
    a[23] = static_cast<uint8_t>(out.tables.size() >> 8);
    // 24..27: the table address, which the firmware fills in.
    a[28] = static_cast<uint8_t>(count);
    a[29] = static_cast<uint8_t>(count >> 8);
    a[30] = static_cast<uint8_t>(SMBIOS_MAJOR << 4 | SMBIOS_MINOR);
    a[21] = checksum(a, 16, ENTRY_POINT_LEN);
    a[4] = checksum(a, 0, ENTRY_POINT_LEN);
    return out;
}

} // namespace hako::arch::x86
