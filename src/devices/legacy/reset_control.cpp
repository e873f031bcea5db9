#include "devices/legacy/reset_control.h"

#include <algorithm>

#include "base/log.h"

namespace hako::devices::legacy {

void ResetControl::read(uint64_t offset, std::span<uint8_t> data)
{
    std::fill(data.begin(), data.end(), uint8_t { 0xff });
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("reset-control: bad read at offset {} size {}", offset, data.size());
        return;
    }
    std::lock_guard lock(m_mutex);
    data[0] = m_value;
}

void ResetControl::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (offset != 0 || data.size() != 1) {
        HAKO_WARN_RATELIMITED("reset-control: bad write at offset {} size {}", offset, data.size());
        return;
    }
    bool reset;
    {
        std::lock_guard lock(m_mutex);
        m_value = data[0];
        reset = data[0] & RST_CPU;
    }
    if (reset) {
        HAKO_INFO("reset-control: guest requested a {} reset", (data[0] & SYS_RST) ? "hard" : "soft");
        m_system.request(bus::SystemEvent::Reset);
    }
}

} // namespace hako::devices::legacy
