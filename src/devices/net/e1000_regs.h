// Register offsets, bit fields and descriptor layouts of the Intel 82540EM, named as in Intel's "PCI/PCI-X Family of
// Gigabit Ethernet Controllers Software Developer's Manual" (8254x SDM, 317453), chapters 3 (receive and transmit
// descriptors) and 13 (registers). Only what the model uses is listed.
#pragma once

#include <cstdint>

namespace hako::devices::net::e1000 {

// --- Register offsets in the 128 KiB memory BAR (SDM table 13-2) ---
constexpr uint32_t CTRL = 0x0000;
constexpr uint32_t STATUS = 0x0008;
constexpr uint32_t EECD = 0x0010;
constexpr uint32_t EERD = 0x0014;
constexpr uint32_t CTRL_EXT = 0x0018;
constexpr uint32_t FLA = 0x001c;
constexpr uint32_t MDIC = 0x0020;
constexpr uint32_t FCAL = 0x0028;
constexpr uint32_t FCAH = 0x002c;
constexpr uint32_t FCT = 0x0030;
constexpr uint32_t VET = 0x0038;
constexpr uint32_t ICR = 0x00c0;
constexpr uint32_t ITR = 0x00c4;
constexpr uint32_t ICS = 0x00c8;
constexpr uint32_t IMS = 0x00d0;
constexpr uint32_t IMC = 0x00d8;
constexpr uint32_t RCTL = 0x0100;
constexpr uint32_t FCTTV = 0x0170;
constexpr uint32_t TXCW = 0x0178;
constexpr uint32_t RXCW = 0x0180;
constexpr uint32_t TCTL = 0x0400;
constexpr uint32_t TIPG = 0x0410;
constexpr uint32_t AIFS = 0x0458;
constexpr uint32_t LEDCTL = 0x0e00;
constexpr uint32_t PBA = 0x1000;
constexpr uint32_t FCRTL = 0x2160;
constexpr uint32_t FCRTH = 0x2168;
constexpr uint32_t RDFH = 0x2410;
constexpr uint32_t RDFT = 0x2418;
constexpr uint32_t RDFHS = 0x2420;
constexpr uint32_t RDFTS = 0x2428;
constexpr uint32_t RDFPC = 0x2430;
constexpr uint32_t RDBAL = 0x2800;
constexpr uint32_t RDBAH = 0x2804;
constexpr uint32_t RDLEN = 0x2808;
constexpr uint32_t RDH = 0x2810;
constexpr uint32_t RDT = 0x2818;
constexpr uint32_t RDTR = 0x2820;
constexpr uint32_t RXDCTL = 0x2828;
constexpr uint32_t RADV = 0x282c;
constexpr uint32_t RSRPD = 0x2c00;
constexpr uint32_t TXDMAC = 0x3000;
constexpr uint32_t TDFH = 0x3410;
constexpr uint32_t TDFT = 0x3418;
constexpr uint32_t TDFHS = 0x3420;
constexpr uint32_t TDFTS = 0x3428;
constexpr uint32_t TDFPC = 0x3430;
constexpr uint32_t TDBAL = 0x3800;
constexpr uint32_t TDBAH = 0x3804;
constexpr uint32_t TDLEN = 0x3808;
constexpr uint32_t TDH = 0x3810;
constexpr uint32_t TDT = 0x3818;
constexpr uint32_t TIDV = 0x3820;
constexpr uint32_t TXDCTL = 0x3828;
constexpr uint32_t TADV = 0x382c;
constexpr uint32_t TSPMT = 0x3830;
constexpr uint32_t STATS_START = 0x4000; // CRCERRS .. TSCTFC: 64 statistics registers, clear on read
constexpr uint32_t STATS_END = 0x4100;
constexpr uint32_t RXCSUM = 0x5000;
constexpr uint32_t MTA = 0x5200; // 128 dwords
constexpr uint32_t RA = 0x5400;  // 16 pairs RAL/RAH
constexpr uint32_t VFTA = 0x5600; // 128 dwords
constexpr uint32_t WUC = 0x5800;
constexpr uint32_t WUFC = 0x5808;
constexpr uint32_t WUS = 0x5810;
constexpr uint32_t MANC = 0x5820;
constexpr uint32_t IPAV = 0x5838;
constexpr uint32_t IP4AT = 0x5840; // 4 entries, 8 bytes apart
constexpr uint32_t IP6AT = 0x5880; // 4 dwords
constexpr uint32_t WUPL = 0x5900;
constexpr uint32_t WUPM = 0x5a00; // 32 dwords
constexpr uint32_t FFLT = 0x5f00; // 4 entries, 8 bytes apart
constexpr uint32_t FFMT = 0x9000; // 128 entries, 8 bytes apart
constexpr uint32_t FFVT = 0x9800; // 128 entries, 8 bytes apart
constexpr uint32_t MMIO_SIZE = 0x20000;

constexpr unsigned MTA_ENTRIES = 128;
constexpr unsigned VFTA_ENTRIES = 128;
constexpr unsigned RA_ENTRIES = 16;

// Statistics registers (SDM 13.7), offsets from STATS_START / 4.
constexpr uint32_t STAT_MPC = (0x4010 - STATS_START) / 4;   // missed packets
constexpr uint32_t STAT_PRC64 = (0x405c - STATS_START) / 4; // .. PRC1522 at +5
constexpr uint32_t STAT_GPRC = (0x4074 - STATS_START) / 4;
constexpr uint32_t STAT_BPRC = (0x4078 - STATS_START) / 4;
constexpr uint32_t STAT_MPRC = (0x407c - STATS_START) / 4;
constexpr uint32_t STAT_GPTC = (0x4080 - STATS_START) / 4;
constexpr uint32_t STAT_GORCL = (0x4088 - STATS_START) / 4;
constexpr uint32_t STAT_GORCH = (0x408c - STATS_START) / 4;
constexpr uint32_t STAT_GOTCL = (0x4090 - STATS_START) / 4;
constexpr uint32_t STAT_GOTCH = (0x4094 - STATS_START) / 4;
constexpr uint32_t STAT_RNBC = (0x40a0 - STATS_START) / 4;
constexpr uint32_t STAT_RUC = (0x40a4 - STATS_START) / 4;
constexpr uint32_t STAT_ROC = (0x40ac - STATS_START) / 4;
constexpr uint32_t STAT_TORL = (0x40c0 - STATS_START) / 4;
constexpr uint32_t STAT_TORH = (0x40c4 - STATS_START) / 4;
constexpr uint32_t STAT_TOTL = (0x40c8 - STATS_START) / 4;
constexpr uint32_t STAT_TOTH = (0x40cc - STATS_START) / 4;
constexpr uint32_t STAT_TPR = (0x40d0 - STATS_START) / 4;
constexpr uint32_t STAT_TPT = (0x40d4 - STATS_START) / 4;
constexpr uint32_t STAT_PTC64 = (0x40d8 - STATS_START) / 4; // .. PTC1522 at +5
constexpr uint32_t STAT_MPTC = (0x40f0 - STATS_START) / 4;
constexpr uint32_t STAT_BPTC = (0x40f4 - STATS_START) / 4;
constexpr uint32_t STAT_TSCTC = (0x40f8 - STATS_START) / 4;
constexpr uint32_t STAT_TSCTFC = (0x40fc - STATS_START) / 4;
constexpr uint32_t STAT_COUNT = (STATS_END - STATS_START) / 4;

// --- CTRL (13.4.1) ---
constexpr uint32_t CTRL_FD = 1u << 0;
constexpr uint32_t CTRL_LRST = 1u << 3;
constexpr uint32_t CTRL_ASDE = 1u << 5;
constexpr uint32_t CTRL_SLU = 1u << 6;
constexpr uint32_t CTRL_SPEED_1000 = 2u << 8;
constexpr uint32_t CTRL_RST = 1u << 26;
constexpr uint32_t CTRL_VME = 1u << 30;
constexpr uint32_t CTRL_PHY_RST = 1u << 31;

// --- STATUS (13.4.2) ---
constexpr uint32_t STATUS_FD = 1u << 0;
constexpr uint32_t STATUS_LU = 1u << 1;
constexpr uint32_t STATUS_TXOFF = 1u << 4;
constexpr uint32_t STATUS_SPEED_1000 = 2u << 6;
constexpr uint32_t STATUS_ASDV_1000 = 2u << 8;

// --- EECD (13.4.3): Microwire interface to a 93C46 (64 x 16 bits) ---
constexpr uint32_t EECD_SK = 1u << 0;
constexpr uint32_t EECD_CS = 1u << 1;
constexpr uint32_t EECD_DI = 1u << 2;
constexpr uint32_t EECD_DO = 1u << 3;
constexpr uint32_t EECD_FWE_MASK = 3u << 4;
constexpr uint32_t EECD_REQ = 1u << 6;
constexpr uint32_t EECD_GNT = 1u << 7;
constexpr uint32_t EECD_PRES = 1u << 8;
constexpr uint32_t EECD_WRITABLE = EECD_SK | EECD_CS | EECD_DI | EECD_FWE_MASK | EECD_REQ;

// --- EERD (13.4.4), 82540 layout ---
constexpr uint32_t EERD_START = 1u << 0;
constexpr uint32_t EERD_DONE = 1u << 4;
constexpr unsigned EERD_ADDR_SHIFT = 8;
constexpr unsigned EERD_DATA_SHIFT = 16;

// --- MDIC (13.4.6) ---
constexpr uint32_t MDIC_DATA_MASK = 0xffff;
constexpr unsigned MDIC_REG_SHIFT = 16;
constexpr unsigned MDIC_PHY_SHIFT = 21;
constexpr uint32_t MDIC_OP_WRITE = 1u << 26;
constexpr uint32_t MDIC_OP_READ = 2u << 26;
constexpr uint32_t MDIC_OP_MASK = 3u << 26;
constexpr uint32_t MDIC_READY = 1u << 28;
constexpr uint32_t MDIC_INT_EN = 1u << 29;
constexpr uint32_t MDIC_ERROR = 1u << 30;

// --- Interrupt causes: ICR/ICS/IMS/IMC (13.4.17-13.4.21) ---
constexpr uint32_t ICR_TXDW = 1u << 0;
constexpr uint32_t ICR_TXQE = 1u << 1;
constexpr uint32_t ICR_LSC = 1u << 2;
constexpr uint32_t ICR_RXSEQ = 1u << 3;
constexpr uint32_t ICR_RXDMT0 = 1u << 4;
constexpr uint32_t ICR_RXO = 1u << 6;
constexpr uint32_t ICR_RXT0 = 1u << 7;
constexpr uint32_t ICR_MDAC = 1u << 9;
constexpr uint32_t ICR_RXCFG = 1u << 10;
constexpr uint32_t ICR_PHYINT = 1u << 12;
constexpr uint32_t ICR_GPI_SDP6 = 1u << 13;
constexpr uint32_t ICR_GPI_SDP7 = 1u << 14;
constexpr uint32_t ICR_TXD_LOW = 1u << 15;
constexpr uint32_t ICR_SRPD = 1u << 16;
constexpr uint32_t ICR_VALID = 0x1f6df; // the causes the 82540EM has

constexpr uint32_t ITR_INTERVAL_MASK = 0xffff; // in 256 ns units
constexpr uint64_t ITR_UNIT_NS = 256;

// --- RCTL (13.4.22) ---
constexpr uint32_t RCTL_EN = 1u << 1;
constexpr uint32_t RCTL_SBP = 1u << 2;
constexpr uint32_t RCTL_UPE = 1u << 3;
constexpr uint32_t RCTL_MPE = 1u << 4;
constexpr uint32_t RCTL_LPE = 1u << 5;
constexpr uint32_t RCTL_LBM_MASK = 3u << 6;
constexpr unsigned RCTL_RDMTS_SHIFT = 8;
constexpr unsigned RCTL_MO_SHIFT = 12;
constexpr uint32_t RCTL_BAM = 1u << 15;
constexpr unsigned RCTL_BSIZE_SHIFT = 16;
constexpr uint32_t RCTL_VFE = 1u << 18;
constexpr uint32_t RCTL_BSEX = 1u << 25;
constexpr uint32_t RCTL_SECRC = 1u << 26;

// --- TCTL (13.4.33) ---
constexpr uint32_t TCTL_EN = 1u << 1;
constexpr uint32_t TCTL_PSP = 1u << 3;

// --- RAH (13.5.3) ---
constexpr uint32_t RAH_AV = 1u << 31;

// --- RXCSUM (13.5.1) ---
constexpr uint32_t RXCSUM_PCSS_MASK = 0xff;
constexpr uint32_t RXCSUM_IPOFL = 1u << 8;
constexpr uint32_t RXCSUM_TUOFL = 1u << 9;

// --- Receive descriptor (3.2.3), 16 bytes: addr[8], length[2], csum[2], status, errors, special[2] ---
constexpr uint32_t RX_DESC_SIZE = 16;
constexpr uint8_t RXD_STAT_DD = 1u << 0;
constexpr uint8_t RXD_STAT_EOP = 1u << 1;
constexpr uint8_t RXD_STAT_IXSM = 1u << 2;
constexpr uint8_t RXD_STAT_VP = 1u << 3;
constexpr uint8_t RXD_STAT_TCPCS = 1u << 5;
constexpr uint8_t RXD_STAT_IPCS = 1u << 6;
constexpr uint8_t RXD_ERR_TCPE = 1u << 5;
constexpr uint8_t RXD_ERR_IPE = 1u << 6;
constexpr uint8_t RXD_ERR_RXE = 1u << 7;

// --- Transmit descriptors (3.3), 16 bytes ---
constexpr uint32_t TX_DESC_SIZE = 16;
// Legacy: addr[8], length[2], cso, cmd, sta, css, special[2]. Extended (data and context): dword 2 = cmd_and_length.
constexpr uint8_t TXD_CMD_EOP = 1u << 0;
constexpr uint8_t TXD_CMD_IFCS = 1u << 1;
constexpr uint8_t TXD_CMD_IC = 1u << 2;  // legacy: insert checksum
constexpr uint8_t TXD_CMD_TSE = 1u << 2; // data and context: TCP segmentation
constexpr uint8_t TXD_CMD_RS = 1u << 3;
constexpr uint8_t TXD_CMD_RPS = 1u << 4;
constexpr uint8_t TXD_CMD_DEXT = 1u << 5;
constexpr uint8_t TXD_CMD_VLE = 1u << 6;
constexpr uint8_t TXD_CMD_IDE = 1u << 7;
constexpr uint8_t TUCMD_TCP = 1u << 0; // context: TCP (else UDP)
constexpr uint8_t TUCMD_IP = 1u << 1;  // context: IPv4 (else IPv6)
constexpr unsigned TXD_DTYP_SHIFT = 20; // in cmd_and_length
constexpr uint32_t TXD_DTYP_MASK = 0xfu << TXD_DTYP_SHIFT;
constexpr uint32_t TXD_DTYP_CONTEXT = 0;
constexpr uint32_t TXD_DTYP_DATA = 1;
constexpr uint32_t TXD_LEN_MASK = 0xfffff; // DTALEN / PAYLEN
constexpr uint8_t TXD_STAT_DD = 1u << 0;
constexpr uint8_t TXD_POPTS_IXSM = 1u << 0;
constexpr uint8_t TXD_POPTS_TXSM = 1u << 1;

// --- EEPROM words (5.6) ---
constexpr unsigned EEPROM_WORDS = 64;
constexpr unsigned EEPROM_CHECKSUM_WORD = 0x3f;
constexpr uint16_t EEPROM_SUM = 0xbaba;

// --- PHY (the 82540EM's integrated 10/100/1000 PHY, M88E1011 compatible; 13.3.x PHY registers) ---
constexpr unsigned PHY_ADDRESS = 1;
constexpr unsigned PHY_REGS = 32;
constexpr unsigned PHY_CTRL = 0x00;
constexpr unsigned PHY_STATUS = 0x01;
constexpr unsigned PHY_ID1 = 0x02;
constexpr unsigned PHY_ID2 = 0x03;
constexpr unsigned PHY_AUTONEG_ADV = 0x04;
constexpr unsigned PHY_LP_ABILITY = 0x05;
constexpr unsigned PHY_AUTONEG_EXP = 0x06;
constexpr unsigned PHY_NEXT_PAGE_TX = 0x07;
constexpr unsigned PHY_LP_NEXT_PAGE = 0x08;
constexpr unsigned PHY_1000T_CTRL = 0x09;
constexpr unsigned PHY_1000T_STATUS = 0x0a;
constexpr unsigned PHY_EXT_STATUS = 0x0f;
constexpr unsigned M88_PHY_SPEC_CTRL = 0x10;
constexpr unsigned M88_PHY_SPEC_STATUS = 0x11;
constexpr unsigned M88_INT_ENABLE = 0x12;
constexpr unsigned M88_INT_STATUS = 0x13;
constexpr unsigned M88_EXT_PHY_SPEC_CTRL = 0x14;
constexpr unsigned M88_RX_ERR_CNTR = 0x15;
constexpr unsigned M88_LED_CTRL = 0x18;
constexpr unsigned M88_PHY_PAGE_SELECT = 0x1d;
constexpr unsigned M88_PHY_GEN_CONTROL = 0x1e;
constexpr uint16_t MII_CR_RESTART_AUTO_NEG = 1u << 9;
constexpr uint16_t MII_CR_AUTO_NEG_EN = 1u << 12;
constexpr uint16_t MII_CR_RESET = 1u << 15;
constexpr uint16_t MII_SR_LINK_STATUS = 1u << 2;
constexpr uint16_t MII_SR_AUTONEG_COMPLETE = 1u << 5;

} // namespace hako::devices::net::e1000
