// E1000Phy: the 82540EM's integrated copper PHY as the MAC sees it through MDIC (8254x SDM 13.4.6 and the PHY
// register chapter). It reports PHY ID 0x0141/0x0C20 (Marvell 88E1011 compatible, what Linux's e1000 expects for the
// 82540) at MDIO address 1, and a link that is always up at 1000 Mb/s full duplex with autonegotiation complete:
// the backend has no physical link to lose.
//
// Registers: control (reset and restart-autonegotiation self-clear; reset restores the defaults), status (link and
// autonegotiation complete), IDs, advertisement and link partner ability (the partner offers everything), 1000BASE-T
// control/status, extended status, and the M88 specific control/status/interrupt/LED/page registers as storage.
// Other addresses read 0 and ignore writes. Read-only registers ignore writes.
// Not thread-safe: the device calls it under its own lock.
#pragma once

#include <array>
#include <cstdint>

#include "devices/net/e1000_regs.h"

namespace hako::devices::net {

class E1000Phy final {
public:
    E1000Phy() { reset(); }

    void reset();
    uint16_t read(unsigned reg) const { return reg < e1000::PHY_REGS ? m_regs[reg] : 0; }
    /// \return true if the write restarted autonegotiation (or reset the PHY): the link "changed".
    bool write(unsigned reg, uint16_t value);

private:
    std::array<uint16_t, e1000::PHY_REGS> m_regs {};
};

} // namespace hako::devices::net
