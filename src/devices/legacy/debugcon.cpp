#include "devices/legacy/debugcon.h"

#include "base/bytes.h"

namespace hako::devices::legacy {

void DebugCon::read(uint64_t, std::span<uint8_t> data) { store_le(data, READBACK); }

void DebugCon::write(uint64_t, std::span<uint8_t const> data)
{
    if (data.empty() || !m_output)
        return;
    std::lock_guard lock(m_mutex);
    m_output(data.first(1));
}

} // namespace hako::devices::legacy
