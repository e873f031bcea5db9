// Register, bit and command names of the ATA/ATAPI-6 interface (T13 1410D) and the ATAPI packet commands hako's
// CD-ROM answers (SPC-3, MMC-5), as the IDE model in this directory uses them.
#pragma once

#include <cstdint>

namespace hako::devices::ide {

// Command block registers, offsets from the channel's base (0x1F0 / 0x170).
constexpr uint8_t REG_DATA = 0;
constexpr uint8_t REG_ERROR = 1; // read; write: features
constexpr uint8_t REG_FEATURES = 1;
constexpr uint8_t REG_COUNT = 2;
constexpr uint8_t REG_LBA_LOW = 3;
constexpr uint8_t REG_LBA_MID = 4;
constexpr uint8_t REG_LBA_HIGH = 5;
constexpr uint8_t REG_DEVICE = 6;
constexpr uint8_t REG_STATUS = 7; // read; write: command
constexpr uint8_t REG_COMMAND = 7;
constexpr uint8_t COMMAND_BLOCK_SIZE = 8;

// Status register.
constexpr uint8_t ST_ERR = 0x01;
constexpr uint8_t ST_DRQ = 0x08;
constexpr uint8_t ST_DSC = 0x10; // device seek complete (ATAPI: SERV)
constexpr uint8_t ST_DF = 0x20;
constexpr uint8_t ST_DRDY = 0x40;
constexpr uint8_t ST_BSY = 0x80;

// Error register.
constexpr uint8_t ERR_ABRT = 0x04;
constexpr uint8_t ERR_IDNF = 0x10;
constexpr uint8_t ERR_UNC = 0x40;

// Device register.
constexpr uint8_t DEV_DEV = 0x10; // device 1 selected
constexpr uint8_t DEV_LBA = 0x40;
constexpr uint8_t DEV_OBSOLETE = 0xa0; // bits 7 and 5, set by older hosts

// Device control register (control block, 0x3F6 / 0x376).
constexpr uint8_t CTL_NIEN = 0x02;
constexpr uint8_t CTL_SRST = 0x04;
constexpr uint8_t CTL_HOB = 0x80;

// ATAPI interrupt reason (the sector count register during PACKET).
constexpr uint8_t IR_COD = 0x01;
constexpr uint8_t IR_IO = 0x02;

// ATA commands.
namespace cmd {
constexpr uint8_t NOP = 0x00;
constexpr uint8_t DEVICE_RESET = 0x08;
constexpr uint8_t RECALIBRATE = 0x10; // 0x10-0x1F
constexpr uint8_t READ_SECTORS = 0x20;
constexpr uint8_t READ_SECTORS_NORETRY = 0x21;
constexpr uint8_t READ_SECTORS_EXT = 0x24;
constexpr uint8_t READ_DMA_EXT = 0x25;
constexpr uint8_t READ_MULTIPLE_EXT = 0x29;
constexpr uint8_t WRITE_SECTORS = 0x30;
constexpr uint8_t WRITE_SECTORS_NORETRY = 0x31;
constexpr uint8_t WRITE_SECTORS_EXT = 0x34;
constexpr uint8_t WRITE_DMA_EXT = 0x35;
constexpr uint8_t WRITE_MULTIPLE_EXT = 0x39;
constexpr uint8_t READ_VERIFY = 0x40;
constexpr uint8_t READ_VERIFY_NORETRY = 0x41;
constexpr uint8_t READ_VERIFY_EXT = 0x42;
constexpr uint8_t SEEK = 0x70;
constexpr uint8_t EXECUTE_DEVICE_DIAGNOSTIC = 0x90;
constexpr uint8_t INITIALIZE_DEVICE_PARAMETERS = 0x91;
constexpr uint8_t PACKET = 0xa0;
constexpr uint8_t IDENTIFY_PACKET_DEVICE = 0xa1;
constexpr uint8_t READ_MULTIPLE = 0xc4;
constexpr uint8_t WRITE_MULTIPLE = 0xc5;
constexpr uint8_t SET_MULTIPLE_MODE = 0xc6;
constexpr uint8_t READ_DMA = 0xc8;
constexpr uint8_t READ_DMA_NORETRY = 0xc9;
constexpr uint8_t WRITE_DMA = 0xca;
constexpr uint8_t WRITE_DMA_NORETRY = 0xcb;
constexpr uint8_t STANDBY_IMMEDIATE = 0xe0;
constexpr uint8_t IDLE_IMMEDIATE = 0xe1;
constexpr uint8_t STANDBY = 0xe2;
constexpr uint8_t IDLE = 0xe3;
constexpr uint8_t CHECK_POWER_MODE = 0xe5;
constexpr uint8_t SLEEP = 0xe6;
constexpr uint8_t FLUSH_CACHE = 0xe7;
constexpr uint8_t FLUSH_CACHE_EXT = 0xea;
constexpr uint8_t IDENTIFY_DEVICE = 0xec;
constexpr uint8_t SET_FEATURES = 0xef;
} // namespace cmd

// SET FEATURES subcommands (features register).
namespace feature {
constexpr uint8_t ENABLE_WRITE_CACHE = 0x02;
constexpr uint8_t SET_TRANSFER_MODE = 0x03;
constexpr uint8_t DISABLE_READ_LOOKAHEAD = 0x55;
constexpr uint8_t DISABLE_REVERTING = 0x66;
constexpr uint8_t DISABLE_WRITE_CACHE = 0x82;
constexpr uint8_t ENABLE_READ_LOOKAHEAD = 0xaa;
constexpr uint8_t ENABLE_REVERTING = 0xcc;
} // namespace feature

// ATAPI packet feature bits (features register of PACKET).
constexpr uint8_t PACKET_DMA = 0x01;

// SCSI / MMC operation codes.
namespace scsi {
constexpr uint8_t TEST_UNIT_READY = 0x00;
constexpr uint8_t REQUEST_SENSE = 0x03;
constexpr uint8_t INQUIRY = 0x12;
constexpr uint8_t MODE_SENSE_6 = 0x1a;
constexpr uint8_t START_STOP_UNIT = 0x1b;
constexpr uint8_t PREVENT_ALLOW = 0x1e;
constexpr uint8_t READ_CAPACITY = 0x25;
constexpr uint8_t READ_10 = 0x28;
constexpr uint8_t SEEK_10 = 0x2b;
constexpr uint8_t READ_TOC = 0x43;
constexpr uint8_t GET_CONFIGURATION = 0x46;
constexpr uint8_t GET_EVENT_STATUS = 0x4a;
constexpr uint8_t MODE_SENSE_10 = 0x5a;
constexpr uint8_t READ_12 = 0xa8;
constexpr uint8_t SET_CD_SPEED = 0xbb;
} // namespace scsi

// Sense keys and additional sense codes (SPC-3 4.5.6, annex D).
namespace sense {
constexpr uint8_t NO_SENSE = 0x00;
constexpr uint8_t NOT_READY = 0x02;
constexpr uint8_t MEDIUM_ERROR = 0x03;
constexpr uint8_t ILLEGAL_REQUEST = 0x05;
constexpr uint8_t UNIT_ATTENTION = 0x06;

constexpr uint8_t ASC_UNRECOVERED_READ = 0x11;
constexpr uint8_t ASC_INVALID_OPCODE = 0x20;
constexpr uint8_t ASC_LBA_OUT_OF_RANGE = 0x21;
constexpr uint8_t ASC_INVALID_FIELD_IN_CDB = 0x24;
constexpr uint8_t ASC_MEDIUM_MAY_HAVE_CHANGED = 0x28;
constexpr uint8_t ASC_SAVING_NOT_SUPPORTED = 0x39;
constexpr uint8_t ASC_MEDIUM_NOT_PRESENT = 0x3a;
constexpr uint8_t ASC_REMOVAL_PREVENTED = 0x53;
} // namespace sense

} // namespace hako::devices::ide
