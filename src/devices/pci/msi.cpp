#include "devices/pci/msi.h"

#include <array>

#include "base/bytes.h"
#include "base/log.h"

namespace hako::devices::pci {

Result<std::unique_ptr<MsiCapability>> MsiCapability::create(PciDevice& device, std::shared_ptr<MsiSink> sink, unsigned vectors)
{
    unsigned log2 = 0;
    while ((1u << log2) < vectors)
        ++log2;
    if (!sink || vectors == 0 || vectors > 32 || (1u << log2) != vectors)
        return Error(ErrorKind::InvalidArgument, fmt::format("pci {}: bad MSI vector count {}", device.name(), vectors));
    // The body after the ID/next header: flags(2) addr_lo(4) addr_hi(4) data(2) reserved(2) mask(4) pending(4).
    std::array<uint8_t, 22> body {};
    std::array<uint8_t, 22> mask {};
    put_le16(&body[0], static_cast<uint16_t>((log2 << 1) | PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT));
    put_le16(&mask[0], PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    put_le32(&mask[2], 0xfffffffc);
    put_le32(&mask[6], 0xffffffff);
    put_le16(&mask[10], 0xffff);
    put_le32(&mask[14], vectors == 32 ? 0xffffffff : (1u << vectors) - 1);
    auto const offset = TRY(device.add_capability(PCI_CAP_ID_MSI, body, mask));
    return std::make_unique<MsiCapability>(device, std::move(sink), offset, vectors);
}

unsigned MsiCapability::enabled_vectors_locked() const
{
    unsigned const mme = (load(PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_QSIZE) >> 4;
    unsigned const n = mme > 5 ? 32u : 1u << mme;
    return n < m_vectors ? n : m_vectors;
}

unsigned MsiCapability::enabled_vectors() const
{
    std::lock_guard lock(m_lock);
    return enabled_vectors_locked();
}

bool MsiCapability::enabled() const { return load(PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE; }

uint64_t MsiCapability::dropped_count() const
{
    std::lock_guard lock(m_lock);
    return m_dropped;
}

void MsiCapability::deliver_locked(unsigned vector)
{
    uint64_t const address = (static_cast<uint64_t>(load(PCI_MSI_ADDRESS_HI, 4)) << 32) | load(PCI_MSI_ADDRESS_LO, 4);
    unsigned const n = enabled_vectors_locked();
    uint32_t const data = (load(PCI_MSI_DATA, 2) & ~(n - 1)) | (vector & (n - 1));
    m_sink->deliver(address, data);
}

bool MsiCapability::notify(unsigned vector)
{
    std::lock_guard lock(m_lock);
    if (!(load(PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE))
        return false;
    if (vector >= enabled_vectors_locked()) {
        ++m_dropped;
        HAKO_WARN_RATELIMITED("pci {}: MSI vector {} is not enabled", m_device.name(), vector);
        return true;
    }
    uint32_t const bit = 1u << vector;
    if (load(PCI_MSI_MASK, 4) & bit) {
        auto const pending = static_cast<uint16_t>(m_offset + PCI_MSI_PENDING);
        m_device.config_store(pending, 4, m_device.config_load(pending, 4) | bit);
        return true;
    }
    deliver_locked(vector);
    return true;
}

void MsiCapability::config_written(uint16_t offset, size_t size)
{
    if (offset + size <= m_offset || offset >= m_offset + 24u)
        return;
    std::lock_guard lock(m_lock);
    if (!(load(PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE))
        return;
    auto const pending_reg = static_cast<uint16_t>(m_offset + PCI_MSI_PENDING);
    uint32_t pending = m_device.config_load(pending_reg, 4);
    uint32_t const deliverable = pending & ~load(PCI_MSI_MASK, 4);
    if (deliverable == 0)
        return;
    m_device.config_store(pending_reg, 4, pending & ~deliverable);
    unsigned const n = enabled_vectors_locked();
    for (unsigned v = 0; v < 32; ++v) {
        if (deliverable & (1u << v)) {
            if (v < n)
                deliver_locked(v);
        }
    }
}

} // namespace hako::devices::pci
