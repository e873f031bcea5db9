// Fuzz target: the small legacy port devices (isa-debug-exit, debugcon, 0xCF9 reset control, port sink), each
// driven by arbitrary (device, offset, size, value) accesses. Nothing may crash; system requests only counted.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bus/system_control.h"
#include "fuzz_fakes.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/debugcon.h"
#include "devices/legacy/port_sink.h"
#include "devices/legacy/reset_control.h"

using namespace hako;


extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    hako::fuzz::CountingSystem system;
    uint64_t out_bytes = 0;
    std::vector<std::shared_ptr<bus::Device>> devices {
        std::make_shared<devices::legacy::DebugExit>(system),
        std::make_shared<devices::legacy::DebugCon>([&](std::span<uint8_t const> b) { out_bytes += b.size(); }),
        std::make_shared<devices::legacy::ResetControl>(system),
        std::make_shared<devices::legacy::PortSink>("sink", 0xff),
    };
    for (size_t i = 0; i + 4 <= size; i += 4) {
        auto& dev = devices[data[i] % devices.size()];
        uint64_t const offset = data[i + 1] % 8;
        size_t const len = size_t { 1 } << (data[i + 2] % 4);
        uint8_t buf[8];
        for (auto& b : buf)
            b = data[i + 3];
        if (data[i] & 0x80)
            dev->read(offset, std::span<uint8_t>(buf, len));
        else
            dev->write(offset, std::span<uint8_t const>(buf, len));
    }
    return 0;
}
