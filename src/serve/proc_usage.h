// What a VM costs the host, read from procfs for the VM's `hako run` process: CPU time (utime + stime of
// /proc/PID/stat, all its threads: vCPUs, event loop, I/O) and resident memory (statm's resident pages, which
// include the guest RAM it has touched). Clients turn two samples into a CPU percentage.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/types.h>

namespace hako::serve {

struct ProcUsage {
    double cpu_seconds { 0 };
    uint64_t rss_bytes { 0 };
};

/// Parses the contents of /proc/PID/stat and /proc/PID/statm; nullopt when either is malformed. The command name
/// in stat may hold spaces and parentheses: fields are counted after its last ')'.
std::optional<ProcUsage> parse_proc_usage(std::string_view stat, std::string_view statm, long ticks_per_second, long page_size);
/// Reads them for a live process; nullopt when it is gone or unreadable.
std::optional<ProcUsage> read_proc_usage(pid_t pid);

} // namespace hako::serve
