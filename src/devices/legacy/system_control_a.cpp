#include "devices/legacy/system_control_a.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::legacy {

void SystemControlA::read(uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("system-control-a: bad read at offset {} size {}", offset, data.size());
        return;
    }
    std::lock_guard lock(m_mutex);
    data[0] = m_value;
}

void SystemControlA::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("system-control-a: bad write at offset {} size {}", offset, data.size());
        return;
    }
    {
        std::lock_guard lock(m_mutex);
        m_value = data[0] & A20_GATE;
    }
    if (data[0] & FAST_RESET) {
        HAKO_INFO("system-control-a: guest requested a fast reset");
        m_system.request(bus::SystemEvent::Reset);
    }
}

} // namespace hako::devices::legacy
