#include "serve/copy_worker.h"

// Asio's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio/post.hpp>
#include <csignal>
#include <map>
#include <pthread.h>
#include <unistd.h>

namespace hako::serve {

struct CopyWorker::Shared {
    std::mutex mutex; // guards everything below; taken by the io_context thread and the worker, never nested
    std::condition_variable_any wake;
    std::deque<Job> queue;
    std::map<uint64_t, std::vector<std::string>> unfinished; // job id -> its targets, until its callback has run
    uint64_t next_id { 1 };
};

namespace {

void unlink_all(std::vector<std::string> const& paths)
{
    for (auto const& p : paths)
        ::unlink(p.c_str());
}

std::vector<std::string> targets(std::vector<CopyFile> const& files)
{
    std::vector<std::string> out;
    for (auto const& f : files)
        out.push_back(f.dst_path);
    return out;
}

} // namespace

CopyWorker::CopyWorker(boost::asio::io_context& ioc)
    : m_ioc(ioc), m_shared(std::make_shared<Shared>()), m_thread([this](std::stop_token stop) { run(stop); })
{
}

CopyWorker::~CopyWorker()
{
    m_thread.request_stop();
    if (m_thread.joinable())
        m_thread.join();
    std::lock_guard lock(m_shared->mutex);
    for (auto const& [id, paths] : m_shared->unfinished)
        unlink_all(paths);
    m_shared->unfinished.clear();
    m_shared->queue.clear();
}

Result<void> CopyWorker::submit(std::vector<CopyFile>& files, Finished& done)
{
    {
        std::lock_guard lock(m_shared->mutex);
        if (m_shared->unfinished.size() >= MAX_JOBS)
            return Error(ErrorKind::Busy, fmt::format("{} disk copies are in progress or waiting: try again when one has ended", MAX_JOBS));
        uint64_t const id = m_shared->next_id++;
        m_shared->unfinished.emplace(id, targets(files));
        m_shared->queue.push_back(Job { id, std::move(files), std::move(done) });
    }
    m_shared->wake.notify_one();
    return ok();
}

Result<block::CopyMethod> CopyWorker::copy(Job& job, std::stop_token const& stop)
{
    block::CopyMethod method = block::CopyMethod::Reflink;
    for (auto& f : job.files) {
        auto r = block::copy_sparse(f.src.get(), f.dst.get(), stop);
        if (!r)
            return r.error().with_context(fmt::format("Cannot copy {} to {}", f.src_path, f.dst_path));
        method = *r;
        if (::fdatasync(f.dst.get()) != 0)
            return Error::from_errno(ErrorKind::Io, fmt::format("Cannot write {}", f.dst_path));
    }
    return method;
}

void CopyWorker::run(std::stop_token stop)
{
    // The daemon's signals are the io_context's business.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "hako-copy");
    for (;;) {
        Job job {};
        {
            std::unique_lock lock(m_shared->mutex);
            if (!m_shared->wake.wait(lock, stop, [this] { return !m_shared->queue.empty(); }))
                return; // stopped
            job = std::move(m_shared->queue.front());
            m_shared->queue.pop_front();
        }
        auto result = copy(job, stop);
        std::vector<std::string> const paths = targets(job.files);
        job.files.clear(); // closes them
        if (!result)
            unlink_all(paths);
        if (stop.stop_requested())
            return; // the destructor unlinks what this job and the queued ones made
        boost::asio::post(m_ioc, [weak = std::weak_ptr(m_shared), id = job.id, done = std::move(job.done), result = std::move(result)]() {
            auto shared = weak.lock();
            if (!shared)
                return; // the worker is gone, and with it the targets
            {
                std::lock_guard lock(shared->mutex);
                shared->unfinished.erase(id);
            }
            done(result);
        });
    }
}

} // namespace hako::serve
