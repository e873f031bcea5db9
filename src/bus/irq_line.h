// IrqLine: how a device raises an interrupt, without knowing whether KVM, a test or a fuzzer is behind it.
#pragma once

namespace hako::bus {

class IrqLine {
public:
    virtual ~IrqLine() = default;
    /// Drives a level-triggered line (true = asserted).
    virtual void set_level(bool asserted) = 0;
    /// An edge: assert then deassert.
    virtual void pulse()
    {
        set_level(true);
        set_level(false);
    }
};

} // namespace hako::bus
