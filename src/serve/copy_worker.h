// CopyWorker: `hako serve`'s one worker thread ("hako-copy"), for the disk image copies of a VM clone, which can take
// minutes and must not hold up the io_context (the API, the event streams, the consoles).
//
// The io_context thread opens the files (source read-only, target created with O_EXCL, so the target name is taken
// at once) and submits them as one job; the worker copies them one after another with block::copy_sparse (reflink,
// else the data extents only), fdatasync()s each copy, and posts the outcome back to the io_context, where the
// caller's callback runs. Jobs run one at a time, in order (copies are disk-bound: running two at once would not
// finish sooner); at most MAX_JOBS wait or run.
//
// Failure and shutdown: a job that fails (e.g. "No space left on device") has its targets unlinked by the worker
// before the callback hears of it. The destructor stops the copy in progress between two pieces, joins the thread,
// and unlinks the targets of every job whose callback has not run: the one stopped half-way, those still queued, and
// one finished whose callback was posted but will not run any more. So a daemon that exits leaves no partial copy.
#pragma once

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "block/sparse_copy.h"

namespace hako::serve {

struct CopyFile {
    UniqueFd src;
    UniqueFd dst;
    std::string src_path;
    std::string dst_path;
};

class CopyWorker final {
public:
    static constexpr size_t MAX_JOBS = 8;
    /// Runs on the io_context: the method of the last copy, or why the job failed (its targets are gone by then).
    using Finished = std::function<void(Result<block::CopyMethod>)>;

    explicit CopyWorker(boost::asio::io_context& ioc);
    ~CopyWorker();
    CopyWorker(CopyWorker const&) = delete;
    CopyWorker& operator=(CopyWorker const&) = delete;

    /// Queues a job: takes `files` and `done`. Busy when MAX_JOBS are waiting or running; then nothing is taken (the
    /// caller closes the files and unlinks the targets).
    [[nodiscard]] Result<void> submit(std::vector<CopyFile>& files, Finished& done);

private:
    struct Job {
        uint64_t id;
        std::vector<CopyFile> files;
        Finished done;
    };
    struct Shared; // what the posted completions and the thread share
    void run(std::stop_token stop);
    Result<block::CopyMethod> copy(Job& job, std::stop_token const& stop);

    boost::asio::io_context& m_ioc;
    std::shared_ptr<Shared> m_shared;
    std::jthread m_thread; // last: joined first on destruction
};

} // namespace hako::serve
