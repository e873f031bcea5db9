// Fuzzes the i8042: the input is a sequence of 4-byte records (op, offset, size, value).
// op % 4: 0 read, 1 write (offset 0 data, 4 command), 2 push keyboard bytes, 3 push mouse bytes.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_fakes.h"
#include "devices/legacy/i8042.h"


extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    hako::fuzz::CountingSystem sys;
    auto ctl = std::make_shared<hako::devices::legacy::I8042>(sys, std::make_shared<hako::fuzz::StrictIrqLine>(),
        std::make_shared<hako::fuzz::StrictIrqLine>());
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t const op = data[i] % 4;
        uint64_t const offset = (data[i + 1] & 1) ? 4 : data[i + 1] % 6;
        size_t const len = (data[i + 2] & 0x80) ? size_t { 1 } << (data[i + 2] % 4) : 1;
        uint8_t buf[8] = { data[i + 3], 0, 0, 0, 0, 0, 0, 0 };
        switch (op) {
        case 0:
            ctl->read(offset, std::span<uint8_t>(buf, len));
            break;
        case 1:
            ctl->write(offset, std::span<uint8_t const>(buf, len));
            break;
        case 2:
        case 3: {
            std::vector<uint8_t> bytes(data[i + 2] % 80, data[i + 3]);
            if (op == 2)
                ctl->push_keyboard_bytes(bytes);
            else
                ctl->push_mouse_bytes(bytes);
            break;
        }
        }
        if (ctl->queued() > 3 * hako::devices::legacy::I8042::QUEUE_LIMIT)
            std::abort();
    }
    return 0;
}
