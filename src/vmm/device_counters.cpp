#include "vmm/device_counters.h"

namespace hako::vmm {

nlohmann::json to_json(devices::virtio::VirtioPciStats const& s)
{
    return { { "bad_accesses", s.bad_accesses }, { "rejected_writes", s.rejected_writes },
        { "features_refused", s.features_refused }, { "needs_reset", s.needs_reset }, { "bad_notifies", s.bad_notifies } };
}

nlohmann::json to_json(devices::virtio::blk::BlkStats const& s)
{
    nlohmann::json errors = nlohmann::json::object();
    for (size_t i = 0; i < devices::virtio::blk::REQUEST_ERROR_COUNT; ++i) {
        auto const e = static_cast<devices::virtio::blk::RequestError>(i);
        if (s.error_count(e))
            errors[std::string(to_string(e))] = s.error_count(e);
    }
    return { { "reads", s.reads }, { "writes", s.writes }, { "flushes", s.flushes }, { "get_ids", s.get_ids },
        { "discards", s.discards }, { "write_zeroes", s.write_zeroes }, { "bytes_read", s.bytes_read },
        { "bytes_written", s.bytes_written }, { "status_ok", s.status_ok }, { "status_ioerr", s.status_ioerr },
        { "status_unsupp", s.status_unsupp }, { "unanswerable", s.unanswerable }, { "errors", errors } };
}

nlohmann::json to_json(devices::virtio::RngStats const& s)
{
    return { { "requests", s.requests }, { "bytes", s.bytes }, { "bad_chains", s.bad_chains }, { "capped", s.capped },
        { "short_entropy", s.short_entropy }, { "budget_exhausted", s.budget_exhausted },
        { "queue_broken", s.queue_broken } };
}

nlohmann::json to_json(MsiStats const& s)
{
    return { { "delivered_irqfd", s.delivered_irqfd }, { "delivered_ioctl", s.delivered_ioctl },
        { "dropped_bad_address", s.dropped_bad_address }, { "routes", s.routes } };
}

nlohmann::json to_json(devices::net::E1000Stats const& s)
{
    return { { "tx_frames", s.tx_frames }, { "tx_bytes", s.tx_bytes }, { "tx_tso_packets", s.tx_tso_packets },
        { "tx_tso_segments", s.tx_tso_segments }, { "tx_checksums", s.tx_checksums }, { "tx_dropped", s.tx_dropped },
        { "tx_bad_descriptors", s.tx_bad_descriptors }, { "tx_zero_length", s.tx_zero_length },
        { "rx_frames", s.rx_frames }, { "rx_bytes", s.rx_bytes }, { "rx_filtered", s.rx_filtered },
        { "rx_dropped_disabled", s.rx_dropped_disabled }, { "rx_dropped_bad", s.rx_dropped_bad },
        { "rx_no_buffer", s.rx_no_buffer }, { "rx_bad_descriptors", s.rx_bad_descriptors }, { "bad_rings", s.bad_rings },
        { "interrupts", s.interrupts }, { "itr_deferred", s.itr_deferred }, { "bad_accesses", s.bad_accesses },
        { "eeprom_unsupported", s.eeprom_unsupported } };
}

nlohmann::json to_json(devices::net::Rtl8139Stats const& s)
{
    return { { "tx_frames", s.tx_frames }, { "tx_bytes", s.tx_bytes }, { "tx_aborted", s.tx_aborted },
        { "rx_frames", s.rx_frames }, { "rx_bytes", s.rx_bytes }, { "rx_filtered", s.rx_filtered },
        { "rx_dropped_disabled", s.rx_dropped_disabled }, { "rx_dropped_bad", s.rx_dropped_bad },
        { "rx_no_buffer", s.rx_no_buffer }, { "rx_bad_buffer", s.rx_bad_buffer }, { "interrupts", s.interrupts },
        { "bad_accesses", s.bad_accesses }, { "eeprom_unsupported", s.eeprom_unsupported } };
}

nlohmann::json to_json(devices::net::PcnetStats const& s)
{
    return { { "tx_frames", s.tx_frames }, { "tx_bytes", s.tx_bytes }, { "tx_errors", s.tx_errors },
        { "rx_frames", s.rx_frames }, { "rx_bytes", s.rx_bytes }, { "rx_filtered", s.rx_filtered },
        { "rx_dropped_stopped", s.rx_dropped_stopped }, { "rx_dropped_bad", s.rx_dropped_bad },
        { "rx_no_buffer", s.rx_no_buffer }, { "rx_overflow", s.rx_overflow }, { "rx_bad_dma", s.rx_bad_dma },
        { "dma_errors", s.dma_errors },
        { "bad_init_blocks", s.bad_init_blocks }, { "interrupts", s.interrupts }, { "bad_accesses", s.bad_accesses } };
}

nlohmann::json to_json(devices::net::Ne2kPciStats const& s)
{
    return { { "tx_frames", s.tx_frames }, { "tx_bytes", s.tx_bytes }, { "tx_aborted", s.tx_aborted },
        { "tx_loopback", s.tx_loopback }, { "rx_frames", s.rx_frames }, { "rx_bytes", s.rx_bytes },
        { "rx_filtered", s.rx_filtered }, { "rx_dropped_stopped", s.rx_dropped_stopped },
        { "rx_dropped_bad", s.rx_dropped_bad }, { "rx_monitor", s.rx_monitor }, { "rx_no_buffer", s.rx_no_buffer },
        { "rx_bad_ring", s.rx_bad_ring }, { "interrupts", s.interrupts }, { "bad_accesses", s.bad_accesses } };
}

} // namespace hako::vmm
