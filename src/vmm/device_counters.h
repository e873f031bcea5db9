// Device counters as JSON, for the API's vm.counters: what each device served and what it refused from the guest.
#pragma once

#include <nlohmann/json.hpp>

#include "devices/net/e1000.h"
#include "devices/net/pcnet.h"
#include "devices/net/ne2k_pci.h"
#include "devices/net/rtl8139.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/virtio_pci.h"
#include "vmm/kvm_msi.h"

namespace hako::vmm {

nlohmann::json to_json(devices::virtio::VirtioPciStats const& s);
nlohmann::json to_json(devices::virtio::blk::BlkStats const& s);
nlohmann::json to_json(devices::virtio::RngStats const& s);
nlohmann::json to_json(MsiStats const& s);
nlohmann::json to_json(devices::net::E1000Stats const& s);
nlohmann::json to_json(devices::net::Rtl8139Stats const& s);
nlohmann::json to_json(devices::net::PcnetStats const& s);
nlohmann::json to_json(devices::net::Ne2kPciStats const& s);

} // namespace hako::vmm
