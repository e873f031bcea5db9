// Register, bit and structure names of the Serial ATA AHCI 1.3 interface (Intel, "Serial ATA Advanced Host
// Controller Interface", rev. 1.3: sections 3 (registers) and 4 (system memory structures)) and the SATA FIS types
// (SATA 2.6, 10.3), as the AHCI model in this directory uses them.
#pragma once

#include <cstdint>

namespace hako::devices::ide::ahci {

// Generic host control (AHCI 1.3, 3.1), offsets in ABAR.
constexpr uint32_t CAP = 0x00;
constexpr uint32_t GHC = 0x04;
constexpr uint32_t IS = 0x08;
constexpr uint32_t PI = 0x0c;
constexpr uint32_t VS = 0x10;
constexpr uint32_t CCC_CTL = 0x14;
constexpr uint32_t CCC_PORTS = 0x18;
constexpr uint32_t EM_LOC = 0x1c;
constexpr uint32_t EM_CTL = 0x20;
constexpr uint32_t CAP2 = 0x24;
constexpr uint32_t BOHC = 0x28;

constexpr uint32_t CAP_S64A = 1u << 31;  // 64-bit addressing
constexpr uint32_t CAP_SNCQ = 1u << 30;  // native command queuing
constexpr uint32_t CAP_SAM = 1u << 18;   // AHCI mode only
constexpr uint32_t CAP_ISS_GEN2 = 2u << 20;
constexpr unsigned CAP_NCS_SHIFT = 8;    // number of command slots - 1

constexpr uint32_t GHC_HR = 1u << 0;
constexpr uint32_t GHC_IE = 1u << 1;
constexpr uint32_t GHC_AE = 1u << 31;

constexpr uint32_t VERSION_1_3 = 0x00010300;

// Port registers (3.3), offsets within a port's 0x80 bytes from 0x100.
constexpr uint32_t PORT_BASE = 0x100;
constexpr uint32_t PORT_SIZE = 0x80;
constexpr uint32_t P_CLB = 0x00;
constexpr uint32_t P_CLBU = 0x04;
constexpr uint32_t P_FB = 0x08;
constexpr uint32_t P_FBU = 0x0c;
constexpr uint32_t P_IS = 0x10;
constexpr uint32_t P_IE = 0x14;
constexpr uint32_t P_CMD = 0x18;
constexpr uint32_t P_TFD = 0x20;
constexpr uint32_t P_SIG = 0x24;
constexpr uint32_t P_SSTS = 0x28;
constexpr uint32_t P_SCTL = 0x2c;
constexpr uint32_t P_SERR = 0x30;
constexpr uint32_t P_SACT = 0x34;
constexpr uint32_t P_CI = 0x38;
constexpr uint32_t P_SNTF = 0x3c;
constexpr uint32_t P_FBS = 0x40;

// PxIS / PxIE bits.
constexpr uint32_t PIS_DHRS = 1u << 0;  // D2H register FIS received
constexpr uint32_t PIS_PSS = 1u << 1;   // PIO setup FIS received
constexpr uint32_t PIS_DSS = 1u << 2;   // DMA setup FIS received
constexpr uint32_t PIS_SDBS = 1u << 3;  // set device bits FIS received
constexpr uint32_t PIS_UFS = 1u << 4;   // unknown FIS
constexpr uint32_t PIS_DPS = 1u << 5;   // descriptor processed (a PRD with I set)
constexpr uint32_t PIS_PCS = 1u << 6;   // port connect change
constexpr uint32_t PIS_DMPS = 1u << 7;  // device mechanical presence
constexpr uint32_t PIS_PRCS = 1u << 22; // PhyRdy change
constexpr uint32_t PIS_IPMS = 1u << 23; // incorrect port multiplier
constexpr uint32_t PIS_OFS = 1u << 24;  // overflow: the PRDT is too small for the transfer
constexpr uint32_t PIS_INFS = 1u << 26; // interface non-fatal error
constexpr uint32_t PIS_IFS = 1u << 27;  // interface fatal error
constexpr uint32_t PIS_HBDS = 1u << 28; // host bus data error
constexpr uint32_t PIS_HBFS = 1u << 29; // host bus fatal error: a structure or buffer outside memory
constexpr uint32_t PIS_TFES = 1u << 30; // task file error: the device reported ERR
constexpr uint32_t PIS_CPDS = 1u << 31; // cold presence
constexpr uint32_t PIS_VALID = 0xfdc000ffu;
/// Errors after which the port stops processing the command list until software clears PxCMD.ST (6.1.2).
constexpr uint32_t PIS_FATAL = PIS_TFES | PIS_HBFS | PIS_HBDS | PIS_IFS | PIS_OFS;

// PxCMD bits.
constexpr uint32_t CMD_ST = 1u << 0;
constexpr uint32_t CMD_SUD = 1u << 1;
constexpr uint32_t CMD_POD = 1u << 2;
constexpr uint32_t CMD_CLO = 1u << 3;
constexpr uint32_t CMD_FRE = 1u << 4;
constexpr unsigned CMD_CCS_SHIFT = 8;
constexpr uint32_t CMD_CCS_MASK = 0x1fu << CMD_CCS_SHIFT;
constexpr uint32_t CMD_FR = 1u << 14;
constexpr uint32_t CMD_CR = 1u << 15;
constexpr uint32_t CMD_ATAPI = 1u << 24;
constexpr uint32_t CMD_DLAE = 1u << 25;
constexpr uint32_t CMD_ALPE = 1u << 26;
constexpr uint32_t CMD_ASP = 1u << 27;
/// What software may write and read back (ICC's transitions complete at once, so it reads 0).
constexpr uint32_t CMD_RW = CMD_ST | CMD_FRE | CMD_ATAPI | CMD_DLAE | CMD_ALPE | CMD_ASP;

// PxSSTS / PxSCTL.
constexpr uint32_t SSTS_PRESENT = 0x123; // IPM 1 (active), SPD 2 (Gen2), DET 3 (device, Phy up)
constexpr uint32_t SCTL_DET_MASK = 0xf;
constexpr uint32_t SCTL_DET_COMRESET = 1;
constexpr uint32_t SCTL_DET_OFFLINE = 4;

// Signatures (PxSIG): sector count, LBA low, mid, high of the device's first D2H FIS.
constexpr uint32_t SIG_ATA = 0x00000101;
constexpr uint32_t SIG_ATAPI = 0xeb140101;
constexpr uint32_t SIG_NONE = 0xffffffff;

// Command list (4.2.2): 32 headers of 32 bytes; command table (4.2.3): FIS, ATAPI command, PRDT.
constexpr unsigned SLOTS = 32;
constexpr uint64_t HEADER_SIZE = 32;
constexpr uint32_t HDR_CFL_MASK = 0x1f;
constexpr uint32_t HDR_A = 1u << 5;
constexpr uint32_t HDR_W = 1u << 6;
constexpr uint32_t HDR_R = 1u << 8;
constexpr uint32_t HDR_C = 1u << 10;
constexpr unsigned HDR_PRDTL_SHIFT = 16;
constexpr uint64_t CT_CFIS = 0x00;
constexpr uint64_t CT_ACMD = 0x40;
constexpr uint64_t CT_PRDT = 0x80;
constexpr uint64_t PRD_SIZE = 16;
constexpr uint32_t PRD_DBC_MASK = 0x3fffff; // byte count - 1 (4 MiB max)
constexpr uint32_t PRD_I = 1u << 31;

// Received FIS area (4.2.1): 256 bytes.
constexpr uint64_t RFIS_DSFIS = 0x00;
constexpr uint64_t RFIS_PSFIS = 0x20;
constexpr uint64_t RFIS_RFIS = 0x40;
constexpr uint64_t RFIS_SDBFIS = 0x58;

// FIS types.
constexpr uint8_t FIS_H2D = 0x27;
constexpr uint8_t FIS_D2H = 0x34;
constexpr uint8_t FIS_PIO_SETUP = 0x5f;
constexpr uint8_t FIS_SDB = 0xa1;
constexpr uint8_t FIS_H2D_C = 0x80; // byte 1: a command (not a device control update)
constexpr uint8_t FIS_I = 0x40;     // byte 1 of D2H, PIO setup and SDB FISes: interrupt
constexpr uint8_t FIS_PIO_D = 0x20; // PIO setup byte 1: device to host

// NCQ commands (ATA8-ACS 7.22, 7.66) and the log that reports their errors.
constexpr uint8_t CMD_READ_FPDMA_QUEUED = 0x60;
constexpr uint8_t CMD_WRITE_FPDMA_QUEUED = 0x61;
constexpr uint8_t CMD_READ_LOG_EXT = 0x2f;
constexpr uint8_t CMD_READ_LOG_DMA_EXT = 0x47;
constexpr uint8_t LOG_NCQ_ERROR = 0x10;

} // namespace hako::devices::ide::ahci
