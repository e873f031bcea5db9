// Fuzzes the ACPI PM block: the input is a sequence of 4-byte records (op, offset, size, value).
// op % 4: 0 read, 1 write, 2 advance the monotonic clock by value * 1 ms, 3 press the power button.
#include <cstdint>
#include <cstdlib>

#include "fuzz_fakes.h"
#include "devices/legacy/acpi_pm.h"


extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    hako::fuzz::CountingSystem sys;
    int64_t now_ns = 0;
    hako::devices::legacy::AcpiPm pm(sys, std::make_shared<hako::fuzz::StrictIrqLine>(), [&] { return now_ns; });
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t const op = data[i] % 4;
        uint64_t const offset = data[i + 1] % 0x48;
        size_t const len = size_t { 1 } << (data[i + 2] % 4);
        uint8_t buf[8] = { data[i + 3], data[i + 2], data[i + 1], data[i], 0, 0, 0, 0 };
        switch (op) {
        case 0:
            pm.read(offset, std::span<uint8_t>(buf, len));
            if (offset == 8 && len == 4 && buf[3] != 0) // PM_TMR is 24 bits
                std::abort();
            break;
        case 1:
            pm.write(offset, std::span<uint8_t const>(buf, len));
            break;
        case 2:
            now_ns += int64_t { data[i + 3] } * 1'000'000 * (data[i + 2] == 0xff ? 100000 : 1);
            break;
        case 3:
            pm.press_power_button();
            break;
        }
    }
    return 0;
}
