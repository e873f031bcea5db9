// Fuzzes the CMOS RTC: the input is a sequence of 4-byte records (op, offset, size, value).
// op % 4: 0 read, 1 write, 2 advance the clock by value * 7 ms (or jump it back), 3 set_nvram / set_memory_layout.
#include <cstdint>
#include <cstdlib>

#include "fuzz_fakes.h"
#include "devices/legacy/cmos_rtc.h"


extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    auto irq = std::make_shared<hako::fuzz::StrictIrqLine>();
    int64_t now_ns = 1'700'000'000LL * 1'000'000'000;
    hako::devices::legacy::CmosRtc rtc(irq, nullptr, [&] { return now_ns; });
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t const op = data[i] % 4;
        uint64_t const offset = data[i + 1] % 6;
        size_t const len = size_t { 1 } << (data[i + 2] % 4);
        uint8_t buf[8] = { data[i + 3], data[i + 1], 0, 0, 0, 0, 0, 0 };
        switch (op) {
        case 0:
            rtc.read(offset, std::span<uint8_t>(buf, len));
            break;
        case 1:
            rtc.write(offset, std::span<uint8_t const>(buf, len));
            break;
        case 2:
            if (data[i + 2] == 0xff)
                now_ns = -now_ns; // a clock before the epoch must not break anything
            else
                now_ns += int64_t { data[i + 3] } * 7'000'000;
            break;
        case 3:
            if (data[i + 2] & 1)
                rtc.set_nvram(static_cast<uint16_t>(data[i + 1] | ((data[i + 2] & 2) << 7)), data[i + 3]);
            else
                rtc.set_memory_layout(uint64_t { data[i + 1] } << 24, uint64_t { data[i + 3] } << 30, data[i + 2]);
            break;
        }
    }
    return 0;
}
