#include "devices/legacy/debug_exit.h"

#include <algorithm>

#include "base/bytes.h"

namespace hako::devices::legacy {

void DebugExit::read(uint64_t, std::span<uint8_t> data) { std::fill(data.begin(), data.end(), uint8_t { 0xff }); }

void DebugExit::write(uint64_t, std::span<uint8_t const> data)
{
    // Wider than 4 bytes cannot come from an OUT instruction; keep the low 32 bits of whatever arrives.
    m_system.request(bus::SystemEvent::DebugExit, static_cast<uint32_t>(load_le(data.first(std::min<size_t>(data.size(), 4)))));
}

} // namespace hako::devices::legacy
