// Fuzzes the 16550A UART: the input is a sequence of 4-byte records (op, offset, size, value).
// op % 4: 0 read, 1 write, 2 host receive(value % 32 bytes), 3 can_receive().
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_fakes.h"
#include "devices/legacy/serial.h"


extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    auto irq = std::make_shared<hako::fuzz::StrictIrqLine>();
    size_t out_bytes = 0;
    hako::devices::legacy::Serial uart(irq, [&](std::span<uint8_t const> b) { out_bytes += b.size(); });
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t const op = data[i] % 4;
        uint64_t const offset = data[i + 1] % 10; // a few past the end, too
        size_t const len = size_t { 1 } << (data[i + 2] % 4);
        uint8_t buf[8] = { data[i + 3], 0, 0, 0, 0, 0, 0, 0 };
        switch (op) {
        case 0:
            uart.read(offset, std::span<uint8_t>(buf, len));
            break;
        case 1:
            uart.write(offset, std::span<uint8_t const>(buf, len));
            break;
        case 2: {
            std::vector<uint8_t> in(data[i + 3] % 32, 0x41);
            size_t const taken = uart.receive(in);
            if (taken > in.size())
                std::abort();
            break;
        }
        case 3:
            (void)uart.can_receive();
            break;
        }
        if (uart.rx_queued() > hako::devices::legacy::Serial::FIFO_SIZE)
            std::abort();
    }
    return 0;
}
