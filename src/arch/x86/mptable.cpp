#include "arch/x86/mptable.h"

#include <cstring>

#include <fmt/format.h>

#include "arch/x86/layout.h"
#include "base/bytes.h"

namespace hako::arch::x86 {

namespace {

constexpr size_t FLOATING_SIZE = 16;
constexpr size_t HEADER_SIZE = 44;
constexpr size_t PROCESSOR_SIZE = 20;
constexpr size_t ENTRY_SIZE = 8; // bus, IOAPIC, I/O interrupt, local interrupt entries
constexpr size_t ISA_IRQS = 16;
constexpr size_t IO_INTERRUPTS = ISA_IRQS - 1; // IRQ2 (cascade) has no entry
constexpr size_t LOCAL_INTERRUPTS = 2;

constexpr uint8_t MP_SPEC_REV = 4; // 1.4

constexpr uint8_t ENTRY_PROCESSOR = 0;
constexpr uint8_t ENTRY_BUS = 1;
constexpr uint8_t ENTRY_IOAPIC = 2;
constexpr uint8_t ENTRY_IO_INTERRUPT = 3;
constexpr uint8_t ENTRY_LOCAL_INTERRUPT = 4;

constexpr uint8_t CPU_FLAG_EN = 0x01;
constexpr uint8_t CPU_FLAG_BP = 0x02;
constexpr uint8_t IOAPIC_FLAG_EN = 0x01;

constexpr uint8_t INT_TYPE_INT = 0;
constexpr uint8_t INT_TYPE_NMI = 1;
constexpr uint8_t INT_TYPE_EXTINT = 3;

constexpr uint32_t CPU_SIGNATURE = 0x600;    // family 6, model 0, stepping 0
constexpr uint32_t CPU_FEATURES = 0x201;     // CPUID.1:EDX FPU | APIC
constexpr uint8_t ISA_BUS_ID = 0;
constexpr uint8_t ALL_LOCAL_APICS = 0xff;

uint8_t checksum(uint8_t const* p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; ++i)
        sum = static_cast<uint8_t>(sum + p[i]);
    return static_cast<uint8_t>(-sum);
}

} // namespace

size_t mptable_size(unsigned cpus)
{
    return FLOATING_SIZE + HEADER_SIZE + PROCESSOR_SIZE * cpus
        + ENTRY_SIZE * (1 /* bus */ + 1 /* IOAPIC */ + IO_INTERRUPTS + LOCAL_INTERRUPTS);
}

Result<std::vector<uint8_t>> build_mptable(unsigned cpus, uint64_t base_gpa)
{
    if (cpus < 1 || cpus > MPTABLE_MAX_CPUS)
        return Error(ErrorKind::InvalidArgument, fmt::format("MP table: {} CPUs (1-{} supported)", cpus, MPTABLE_MAX_CPUS));
    if (base_gpa % 16 != 0)
        return Error(ErrorKind::InvalidArgument, fmt::format("MP table: base {:#x} is not 16-byte aligned", base_gpa));
    size_t size = mptable_size(cpus);
    if (base_gpa >= FOUR_GIB || size > FOUR_GIB - base_gpa)
        return Error(ErrorKind::OutOfRange, "MP table: must lie below 4 GiB");
    if (base_gpa < LOW_RAM_END && base_gpa + size > LOW_RAM_END)
        return Error(ErrorKind::OutOfRange,
            fmt::format("MP table for {} CPUs ({} bytes) at {:#x} runs into the VGA window", cpus, size, base_gpa));

    std::vector<uint8_t> t(size, 0);
    uint8_t* fp = t.data();
    uint8_t* ct = fp + FLOATING_SIZE;
    uint64_t ct_gpa = base_gpa + FLOATING_SIZE;

    // MP Floating Pointer Structure.
    std::memcpy(fp, "_MP_", 4);
    put_le32(fp + 4, static_cast<uint32_t>(ct_gpa));
    fp[8] = 1; // length in 16-byte paragraphs
    fp[9] = MP_SPEC_REV;
    // fp[11] feature byte 1 = 0: a configuration table is present. fp[12] bit 7 (IMCRP) = 0: virtual wire mode.

    // Entries.
    uint8_t* e = ct + HEADER_SIZE;
    uint16_t count = 0;
    for (unsigned i = 0; i < cpus; ++i, ++count, e += PROCESSOR_SIZE) {
        e[0] = ENTRY_PROCESSOR;
        e[1] = static_cast<uint8_t>(i);
        e[2] = MP_APIC_VERSION;
        e[3] = static_cast<uint8_t>(CPU_FLAG_EN | (i == 0 ? CPU_FLAG_BP : 0));
        put_le32(e + 4, CPU_SIGNATURE);
        put_le32(e + 8, CPU_FEATURES);
    }
    e[0] = ENTRY_BUS;
    e[1] = ISA_BUS_ID;
    std::memcpy(e + 2, "ISA   ", 6);
    e += ENTRY_SIZE;
    ++count;

    auto ioapic_id = static_cast<uint8_t>(cpus);
    e[0] = ENTRY_IOAPIC;
    e[1] = ioapic_id;
    e[2] = MP_IOAPIC_VERSION;
    e[3] = IOAPIC_FLAG_EN;
    put_le32(e + 4, static_cast<uint32_t>(IOAPIC_BASE));
    e += ENTRY_SIZE;
    ++count;

    for (uint8_t irq = 0; irq < ISA_IRQS; ++irq) {
        if (irq == 2)
            continue;
        e[0] = ENTRY_IO_INTERRUPT;
        e[1] = INT_TYPE_INT;
        put_le16(e + 2, 0); // polarity and trigger conform to the ISA bus: active-high, edge
        e[4] = ISA_BUS_ID;
        e[5] = irq;
        e[6] = ioapic_id;
        e[7] = irq == 0 ? 2 : irq;
        e += ENTRY_SIZE;
        ++count;
    }

    uint8_t const lint_types[LOCAL_INTERRUPTS] = { INT_TYPE_EXTINT, INT_TYPE_NMI };
    for (uint8_t lint = 0; lint < LOCAL_INTERRUPTS; ++lint) {
        e[0] = ENTRY_LOCAL_INTERRUPT;
        e[1] = lint_types[lint];
        put_le16(e + 2, 0);
        e[4] = ISA_BUS_ID;
        e[5] = 0;
        e[6] = ALL_LOCAL_APICS;
        e[7] = lint;
        e += ENTRY_SIZE;
        ++count;
    }

    // MP Configuration Table header.
    auto base_len = static_cast<uint16_t>(size - FLOATING_SIZE);
    std::memcpy(ct, "PCMP", 4);
    put_le16(ct + 4, base_len);
    ct[6] = MP_SPEC_REV;
    std::memcpy(ct + 8, "HAKO    ", 8);     // OEM ID
    std::memcpy(ct + 16, "HAKOVM      ", 12); // product ID
    put_le16(ct + 34, count);
    put_le32(ct + 36, static_cast<uint32_t>(LAPIC_BASE));
    // Extended table length and checksum stay 0.
    ct[7] = checksum(ct, base_len);
    fp[10] = checksum(fp, FLOATING_SIZE);
    return t;
}

} // namespace hako::arch::x86
