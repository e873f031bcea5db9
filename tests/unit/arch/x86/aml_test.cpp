// The AML opcodes and resource descriptors hako's PCI DSDT uses, each checked against the bytes ACPICA's iasl
// (20200925) emits for the same ASL.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "arch/x86/aml.h"

using namespace hako;
using namespace hako::arch::x86;
using aml::Bytes;

namespace {

Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (auto const& p : parts)
        aml::append(out, p);
    return out;
}

Bytes seg(char const (&s)[5]) { return Bytes(s, s + 4); }

} // namespace

TEST(AmlOps, OperationRegionAndField)
{
    // OperationRegion (P40C, PCI_Config, 0x60, 0x04)
    EXPECT_EQ(*aml::operation_region("P40C", aml::RegionSpace::PciConfig, 0x60, 4),
        cat({ { 0x5b, 0x80 }, seg("P40C"), { 0x02, 0x0a, 0x60, 0x0a, 0x04 } }));
    // OperationRegion (R, SystemMemory, 0x12345678, 0x1000)
    EXPECT_EQ(*aml::operation_region("R", aml::RegionSpace::SystemMemory, 0x12345678, 0x1000),
        cat({ { 0x5b, 0x80 }, seg("R___"), { 0x00, 0x0c, 0x78, 0x56, 0x34, 0x12, 0x0b, 0x00, 0x10 } }));
    // Field (P40C, ByteAcc, NoLock, Preserve) { PRQ0, 8, PRQ1, 8, PRQ2, 8, PRQ3, 8 }
    EXPECT_EQ(*aml::field("P40C", aml::FieldAccess::Byte, aml::FieldUpdate::Preserve,
                  { { "PRQ0", 8 }, { "PRQ1", 8 }, { "PRQ2", 8 }, { "PRQ3", 8 } }),
        cat({ { 0x5b, 0x81, 0x1a }, seg("P40C"), { 0x01 }, seg("PRQ0"), { 0x08 }, seg("PRQ1"), { 0x08 }, seg("PRQ2"),
            { 0x08 }, seg("PRQ3"), { 0x08 } }));
    // Field (R, DWordAcc, NoLock, WriteAsZeros) { AA, 64, BB, 4096 }: multi-byte widths.
    EXPECT_EQ(*aml::field("R", aml::FieldAccess::DWord, aml::FieldUpdate::WriteAsZeros, { { "AA", 64 }, { "BB", 4096 } }),
        cat({ { 0x5b, 0x81, 0x13 }, seg("R___"), { 0x43 }, seg("AA__"), { 0x40, 0x04 }, seg("BB__"),
            { 0x80, 0x00, 0x01 } }));
    EXPECT_FALSE(aml::field("R", aml::FieldAccess::Byte, aml::FieldUpdate::Preserve, { { "A.B", 8 } }));
    EXPECT_FALSE(aml::field("R", aml::FieldAccess::Byte, aml::FieldUpdate::Preserve, { { "A", 0 } }));
    EXPECT_FALSE(aml::field("R", aml::FieldAccess::Byte, aml::FieldUpdate::Preserve, { { "A", 1u << 28 } }));
}

TEST(AmlOps, ControlFlowAndExpressions)
{
    Bytes const prq0 = seg("PRQ0");
    // If (LEqual (And (PRQ0, 0x80), Zero)) { Store (Arg0, Local0) } Else { Or (PRQ0, 0x80, PRQ0) }
    auto cond = aml::lequal(aml::and_op(prq0, aml::integer(0x80)), aml::integer(0));
    auto body = aml::store(*aml::arg(0), *aml::local(0));
    auto code = *aml::if_op(cond, body);
    aml::append(code, *aml::else_op(aml::or_op(prq0, aml::integer(0x80), prq0)));
    EXPECT_EQ(code, cat({ { 0xa0, 0x0e, 0x93, 0x7b }, prq0, { 0x0a, 0x80, 0x00, 0x00, 0x70, 0x68, 0x60, 0xa1, 0x0c, 0x7d },
                        prq0, { 0x0a, 0x80 }, prq0 }));
    // CreateDWordField (Arg0, 0x05, IRQV)
    EXPECT_EQ(*aml::create_dword_field(*aml::arg(0), aml::integer(5), "IRQV"), cat({ { 0x8a, 0x68, 0x0a, 0x05 }, seg("IRQV") }));
    // Store (Arg6, Local3); Return (Local3)
    EXPECT_EQ(aml::store(*aml::arg(6), *aml::local(3)), (Bytes { 0x70, 0x6e, 0x63 }));
    EXPECT_EQ(aml::return_value(*aml::local(3)), (Bytes { 0xa4, 0x63 }));
    EXPECT_EQ(*aml::local(7), Bytes { 0x67 });
    EXPECT_FALSE(aml::local(8));
    EXPECT_FALSE(aml::arg(7));
    EXPECT_FALSE(aml::create_dword_field(*aml::arg(0), aml::integer(5), "BAD!"));
}

TEST(AmlDescriptors, AddressSpaceWindows)
{
    // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
    EXPECT_EQ(*aml::word_bus_number(0, 0xff),
        (Bytes { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01 }));
    // WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
    EXPECT_EQ(*aml::word_io(0x0d00, 0xffff),
        (Bytes { 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3 }));
    // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, 0xF0000000,
    // 0xFEBFFFFF, 0, 0x0EC00000)
    EXPECT_EQ(*aml::dword_memory(aml::MemoryCaching::NonCacheable, 0xf0000000, 0xfebfffff),
        (Bytes { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xf0, 0xff, 0xff, 0xbf, 0xfe, 0, 0, 0,
            0, 0x00, 0x00, 0xc0, 0x0e }));
    // QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0, 0x100000000,
    // 0x8FFFFFFFF, 0, 0x800000000)
    EXPECT_EQ(*aml::qword_memory(aml::MemoryCaching::Cacheable, 0x100000000, 0x8ffffffff),
        (Bytes { 0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0xff, 0xff, 0xff, 0xff, 0x08, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x08,
            0x00, 0x00, 0x00 }));
    // Prefetchable: _MEM = 3.
    EXPECT_EQ((*aml::dword_memory(aml::MemoryCaching::Prefetchable, 0x1000, 0x1fff))[5], 0x07);
    EXPECT_FALSE(aml::word_io(0x100, 0xff));
    EXPECT_FALSE(aml::word_io(0, 0xffff)); // length 0x10000 does not fit
    EXPECT_FALSE(aml::qword_memory(aml::MemoryCaching::Cacheable, 0, ~uint64_t { 0 }));
}

TEST(AmlDescriptors, InterruptAndFixedMemory)
{
    // Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) {5, 9, 10, 11}
    uint32_t const irqs[] = { 5, 9, 10, 11 };
    EXPECT_EQ(*aml::interrupt(aml::Trigger::Level, aml::Polarity::ActiveHigh, aml::Sharing::Shared, irqs),
        (Bytes { 0x89, 0x12, 0x00, 0x09, 0x04, 5, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0 }));
    // Interrupt (ResourceConsumer, Edge, ActiveLow, Exclusive) {20}
    uint32_t const one[] = { 20 };
    EXPECT_EQ(*aml::interrupt(aml::Trigger::Edge, aml::Polarity::ActiveLow, aml::Sharing::Exclusive, one),
        (Bytes { 0x89, 0x06, 0x00, 0x07, 0x01, 20, 0, 0, 0 }));
    EXPECT_EQ(aml::INTERRUPT_FIRST_IRQ_OFFSET, 5u);
    EXPECT_FALSE(aml::interrupt(aml::Trigger::Level, aml::Polarity::ActiveHigh, aml::Sharing::Shared, {}));
    std::vector<uint32_t> many(256, 5);
    EXPECT_FALSE(aml::interrupt(aml::Trigger::Level, aml::Polarity::ActiveHigh, aml::Sharing::Shared, many));
    // Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000)
    EXPECT_EQ(aml::memory32_fixed(true, 0xe0000000, 0x10000000),
        (Bytes { 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x10 }));
    EXPECT_EQ(aml::memory32_fixed(false, 0, 0)[3], 0x00);
}
