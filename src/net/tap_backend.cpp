#include "net/tap_backend.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"

namespace hako::net {

namespace {

constexpr unsigned ALL_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

unsigned to_tun_offloads(Offloads o)
{
    // The kernel refuses TSO without CSUM and ECN without TSO; the NIC is expected to pass a consistent set, but a
    // guest's odd choice must not turn into an ioctl error: drop what lacks its prerequisite.
    unsigned f = 0;
    if (o.csum) {
        f |= TUN_F_CSUM;
        if (o.tso4)
            f |= TUN_F_TSO4;
        if (o.tso6)
            f |= TUN_F_TSO6;
        if (o.ecn && (o.tso4 || o.tso6))
            f |= TUN_F_TSO_ECN;
    }
    return f;
}

} // namespace

Result<std::unique_ptr<TapBackend>> TapBackend::open(std::string const& ifname)
{
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
        return Error(ErrorKind::InvalidArgument,
            fmt::format("tap interface name '{}' must be 1 to {} characters", ifname, IFNAMSIZ - 1));
    int const raw = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (raw < 0) {
        int const err = errno;
        return Error::from_errno(err == ENOENT ? ErrorKind::NotFound
                : err == EACCES || err == EPERM ? ErrorKind::Permission
                                                : ErrorKind::Io,
            "tap: cannot open /dev/net/tun", err);
    }
    UniqueFd fd(raw);
    unsigned features = 0;
    if (::ioctl(fd.get(), TUNGETFEATURES, &features) < 0)
        return Error::from_errno(ErrorKind::Io, "tap: TUNGETFEATURES");
    if (!(features & IFF_VNET_HDR))
        return Error(ErrorKind::Unsupported, "tap: the kernel's tun driver has no IFF_VNET_HDR");
    ifreq ifr {};
    std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
        int const err = errno;
        if (err == EPERM)
            return Error(ErrorKind::Permission,
                fmt::format("tap {}: permission denied (needs CAP_NET_ADMIN, or a tap made for this user: "
                            "ip tuntap add dev {} mode tap user $USER)", ifname, ifname));
        if (err == EBUSY)
            return Error(ErrorKind::Busy, fmt::format("tap {}: in use by another process", ifname));
        if (err == EINVAL)
            return Error(ErrorKind::InvalidArgument,
                fmt::format("tap {}: refused (is it a tun device, or a multi-queue tap?)", ifname));
        return Error::from_errno(ErrorKind::Io, fmt::format("tap {}: TUNSETIFF", ifname), err);
    }
    int hdr_len = static_cast<int>(VNET_HDR_LEN);
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_len) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("tap {}: TUNSETVNETHDRSZ", ifname));
    // Probe the offloads, then start with none (what a NIC that negotiated nothing needs).
    bool const offloads = ::ioctl(fd.get(), TUNSETOFFLOAD, ALL_OFFLOADS) == 0;
    if (::ioctl(fd.get(), TUNSETOFFLOAD, 0u) < 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("tap {}: TUNSETOFFLOAD", ifname));
    EventFd wake = TRY(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC));
    std::string const actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    auto b = std::unique_ptr<TapBackend>(new TapBackend(std::move(fd), std::move(wake), actual, offloads));
    b->m_thread = std::thread([p = b.get()] { p->run(); });
    HAKO_DEBUG("tap {}: attached (offloads {})", actual, offloads ? "supported" : "not supported");
    return b;
}

TapBackend::TapBackend(UniqueFd fd, EventFd wake, std::string ifname, bool offloads_supported)
    : m_fd(std::move(fd))
    , m_wake(std::move(wake))
    , m_ifname(std::move(ifname))
    , m_offloads_supported(offloads_supported)
{
}

TapBackend::~TapBackend()
{
    m_stop.store(true);
    m_wake.signal();
    if (m_thread.joinable())
        m_thread.join();
}

void TapBackend::count_tx_error(int err)
{
    ++m_tx_errors;
    HAKO_WARN_RATELIMITED("tap {}: dropped a frame the kernel refused: {}", m_ifname, std::strerror(err));
}

void TapBackend::send(std::span<uint8_t const> frame) { send(VnetHeader {}, frame); }

void TapBackend::send(VnetHeader const& header, std::span<uint8_t const> frame)
{
    std::array<uint8_t, VNET_HDR_LEN> hdr {};
    encode_vnet_header(header, hdr);
    std::array<iovec, 2> iov { iovec { hdr.data(), hdr.size() },
        iovec { const_cast<uint8_t*>(frame.data()), frame.size() } };
    ssize_t const n = ::writev(m_fd.get(), iov.data(), static_cast<int>(iov.size()));
    if (n < 0) {
        count_tx_error(errno);
        return;
    }
    ++m_tx_frames;
    m_tx_bytes += frame.size();
}

void TapBackend::set_receive_offloads(Offloads offloads)
{
    if (!m_offloads_supported)
        return;
    unsigned const flags = to_tun_offloads(offloads);
    if (::ioctl(m_fd.get(), TUNSETOFFLOAD, flags) < 0)
        HAKO_WARN_RATELIMITED("tap {}: TUNSETOFFLOAD {:#x} failed: {}", m_ifname, flags, std::strerror(errno));
}

void TapBackend::rx_buffers_available()
{
    m_rx_retry.store(true);
    m_wake.signal();
}

TapStats TapBackend::stats() const
{
    return TapStats { m_tx_frames.load(), m_tx_bytes.load(), m_tx_errors.load(), m_rx_frames.load(),
        m_rx_bytes.load(), m_rx_errors.load() };
}

void TapBackend::run()
{
    pthread_setname_np(pthread_self(), "net-tap");
    // Header, then the largest frame a GSO super-frame can be (64 KiB of IP plus link headers) with room to spare:
    // a read never truncates.
    std::vector<uint8_t> buf(VNET_HDR_LEN + 65536 + 256);
    bool reading = true; // false while the Receiver has frames pending
    while (!m_stop.load()) {
        std::array<pollfd, 2> fds { pollfd { m_wake.fd(), POLLIN, 0 }, pollfd { m_fd.get(), POLLIN, 0 } };
        int const n = ::poll(fds.data(), reading ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            HAKO_ERROR("tap {}: poll failed: {}; receive stops", m_ifname, std::strerror(errno));
            return;
        }
        if (fds[0].revents & POLLIN)
            m_wake.consume();
        if (m_stop.load())
            break;
        if (m_rx_retry.exchange(false))
            reading = flush_pending();
        if (!reading)
            continue;
        if (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            HAKO_ERROR("tap {}: the interface went away; receive stops", m_ifname);
            return;
        }
        // Read what is queued, a bounded batch at a time so a stop request is seen.
        for (int i = 0; i < 64 && reading; ++i) {
            ssize_t const r = ::read(m_fd.get(), buf.data(), buf.size());
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                ++m_rx_errors;
                HAKO_WARN_RATELIMITED("tap {}: read failed: {}", m_ifname, std::strerror(errno));
                break;
            }
            auto const len = static_cast<size_t>(r);
            if (len < VNET_HDR_LEN + ETH_MIN_FRAME_LEN) {
                ++m_rx_errors;
                continue;
            }
            VnetHeader const header = decode_vnet_header(std::span(buf).first<VNET_HDR_LEN>());
            auto const frame = std::span<uint8_t const>(buf).subspan(VNET_HDR_LEN, len - VNET_HDR_LEN);
            ++m_rx_frames;
            m_rx_bytes += frame.size();
            reading = deliver(header, frame);
        }
    }
}

} // namespace hako::net
