// SystemControl: how a device asks for a machine-wide action (reset, power off, debug exit).
#pragma once

#include <cstdint>

namespace hako::bus {

enum class SystemEvent {
    Reset,     // the guest asked for a reset (port 0xCF9, i8042 0xFE, ACPI reset register, triple fault)
    PowerOff,  // ACPI S5 or equivalent
    DebugExit, // isa-debug-exit: code is the value written
};

class SystemControl {
public:
    virtual ~SystemControl() = default;
    virtual void request(SystemEvent event, uint32_t code = 0) = 0;
};

} // namespace hako::bus
