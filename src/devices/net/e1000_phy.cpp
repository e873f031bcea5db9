#include "devices/net/e1000_phy.h"

namespace hako::devices::net {

using namespace e1000;

namespace {
// Power-on values (IEEE 802.3 clause 22/40 register meanings; M88E1011 specific registers).
constexpr uint16_t CTRL_DEFAULT = MII_CR_AUTO_NEG_EN | 0x0140; // autonegotiation, full duplex, 1000 Mb/s select
constexpr uint16_t STATUS_DEFAULT = 0x7949 | MII_SR_LINK_STATUS | MII_SR_AUTONEG_COMPLETE; // 10/100 abilities,
                                                                 // extended status, preamble suppression, autoneg
constexpr uint16_t ID1 = 0x0141;
constexpr uint16_t ID2 = 0x0c20;
constexpr uint16_t ADV_DEFAULT = 0x0de1;   // 10/100 half/full, pause, asymmetric pause, selector 802.3
constexpr uint16_t LP_ABILITY = 0x4de1;    // the partner: the same, acknowledged
constexpr uint16_t AUTONEG_EXP = 0x0001;   // the partner can autonegotiate
constexpr uint16_t T1000_CTRL_DEFAULT = 0x0300; // advertise 1000BASE-T half and full
constexpr uint16_t T1000_STATUS = 0x3c00;  // local and remote receiver OK, partner 1000BASE-T half and full
constexpr uint16_t EXT_STATUS = 0x3000;    // 1000BASE-T half and full capable
constexpr uint16_t SPEC_CTRL_DEFAULT = 0x0068;
constexpr uint16_t SPEC_STATUS = 0xac00;   // 1000 Mb/s, full duplex, speed/duplex resolved, link up
constexpr uint16_t EXT_SPEC_CTRL_DEFAULT = 0x0d60;

bool writable(unsigned reg)
{
    switch (reg) {
    case PHY_CTRL:
    case PHY_AUTONEG_ADV:
    case PHY_NEXT_PAGE_TX:
    case PHY_1000T_CTRL:
    case M88_PHY_SPEC_CTRL:
    case M88_INT_ENABLE:
    case M88_EXT_PHY_SPEC_CTRL:
    case M88_LED_CTRL:
    case M88_PHY_PAGE_SELECT:
    case M88_PHY_GEN_CONTROL:
        return true;
    default:
        return false;
    }
}
} // namespace

void E1000Phy::reset()
{
    m_regs.fill(0);
    m_regs[PHY_CTRL] = CTRL_DEFAULT;
    m_regs[PHY_STATUS] = STATUS_DEFAULT;
    m_regs[PHY_ID1] = ID1;
    m_regs[PHY_ID2] = ID2;
    m_regs[PHY_AUTONEG_ADV] = ADV_DEFAULT;
    m_regs[PHY_LP_ABILITY] = LP_ABILITY;
    m_regs[PHY_AUTONEG_EXP] = AUTONEG_EXP;
    m_regs[PHY_1000T_CTRL] = T1000_CTRL_DEFAULT;
    m_regs[PHY_1000T_STATUS] = T1000_STATUS;
    m_regs[PHY_EXT_STATUS] = EXT_STATUS;
    m_regs[M88_PHY_SPEC_CTRL] = SPEC_CTRL_DEFAULT;
    m_regs[M88_PHY_SPEC_STATUS] = SPEC_STATUS;
    m_regs[M88_EXT_PHY_SPEC_CTRL] = EXT_SPEC_CTRL_DEFAULT;
}

bool E1000Phy::write(unsigned reg, uint16_t value)
{
    if (reg >= PHY_REGS || !writable(reg))
        return false;
    if (reg == PHY_CTRL) {
        if (value & MII_CR_RESET) {
            reset();
            return true;
        }
        // Autonegotiation completes at once; both command bits self-clear.
        m_regs[PHY_CTRL] = static_cast<uint16_t>(value & ~MII_CR_RESTART_AUTO_NEG);
        return value & MII_CR_RESTART_AUTO_NEG;
    }
    m_regs[reg] = value;
    return false;
}

} // namespace hako::devices::net
