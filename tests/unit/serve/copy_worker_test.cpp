// CopyWorker (serve/copy_worker.h): a job's copy runs on the worker thread and its outcome comes back on the
// io_context's thread; a failed job's targets are gone before its callback runs; destroying the worker unlinks the
// targets of every job whose callback has not run (and that callback never runs); at most MAX_JOBS are taken.
#include <gtest/gtest.h>

// Asio's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "serve/copy_worker.h"

using namespace hako;
using namespace hako::serve;

namespace {

class CopyWorkerTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char const* t = std::getenv("TMPDIR");
        std::string tmpl = std::string(t && *t ? t : "/tmp") + "/hako-copyworker-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        m_dir = tmpl;
        // The source: 32 MiB, sparse, with data at both ends.
        m_source = m_dir + "/source.raw";
        UniqueFd fd(::open(m_source.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        ASSERT_TRUE(fd.valid());
        ASSERT_EQ(::ftruncate(fd.get(), 32 << 20), 0);
        ASSERT_EQ(::pwrite(fd.get(), "head", 4, 0), 4);
        ASSERT_EQ(::pwrite(fd.get(), "tail", 4, (32 << 20) - 4), 4);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    /// A job of one file: the source (or `src_fd`) to `name` in the directory, created as the daemon does.
    std::vector<CopyFile> job(std::string const& name, int src_fd = -1)
    {
        std::vector<CopyFile> files;
        CopyFile f;
        f.src = UniqueFd(src_fd >= 0 ? src_fd : ::open(m_source.c_str(), O_RDONLY | O_CLOEXEC));
        f.dst_path = m_dir + "/" + name;
        f.dst = UniqueFd(::open(f.dst_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        f.src_path = m_source;
        EXPECT_TRUE(f.src.valid() && f.dst.valid());
        files.push_back(std::move(f));
        return files;
    }
    bool exists(std::string const& name) const { return ::access((m_dir + "/" + name).c_str(), F_OK) == 0; }
    std::string read(std::string const& name, off_t offset) const
    {
        std::string out(4, '\0');
        UniqueFd fd(::open((m_dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC));
        EXPECT_EQ(::pread(fd.get(), out.data(), 4, offset), 4);
        return out;
    }

    std::string m_dir;
    std::string m_source;
};

} // namespace

TEST_F(CopyWorkerTest, CopiesOnItsThreadAndReportsOnTheIoContext)
{
    boost::asio::io_context ioc;
    auto guard = boost::asio::make_work_guard(ioc);
    CopyWorker worker(ioc);
    bool reported = false;
    std::thread::id reported_on;
    auto files = job("copy.raw");
    CopyWorker::Finished done = [&](Result<block::CopyMethod> r) {
        EXPECT_TRUE(r) << (r ? "" : r.error().message());
        reported = true;
        reported_on = std::this_thread::get_id();
        ioc.stop();
    };
    ASSERT_TRUE(worker.submit(files, done));
    EXPECT_TRUE(files.empty()) << "the job took the files";
    ioc.run();
    ASSERT_TRUE(reported);
    EXPECT_EQ(reported_on, std::this_thread::get_id());
    struct stat st {};
    ASSERT_EQ(::stat((m_dir + "/copy.raw").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 32 << 20);
    EXPECT_EQ(read("copy.raw", 0), "head");
    EXPECT_EQ(read("copy.raw", (32 << 20) - 4), "tail");
}

TEST_F(CopyWorkerTest, FailedJobsTargetsAreGoneBeforeItsCallback)
{
    boost::asio::io_context ioc;
    auto guard = boost::asio::make_work_guard(ioc);
    CopyWorker worker(ioc);
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd write_end(fds[1]);
    auto files = job("bad.raw", fds[0]); // a pipe is not a regular file: copy_sparse refuses it
    bool reported = false;
    CopyWorker::Finished done = [&](Result<block::CopyMethod> r) {
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_NE(r.error().message().find("Cannot copy"), std::string::npos) << r.error().message();
        }
        EXPECT_FALSE(exists("bad.raw"));
        reported = true;
        ioc.stop();
    };
    ASSERT_TRUE(worker.submit(files, done));
    ioc.run();
    EXPECT_TRUE(reported);
}

TEST_F(CopyWorkerTest, DestructionUnlinksWhatWasNotReported)
{
    boost::asio::io_context ioc;
    bool reported = false;
    {
        CopyWorker worker(ioc);
        for (auto const* name : { "a.raw", "b.raw", "c.raw" }) {
            auto files = job(name);
            CopyWorker::Finished done = [&](Result<block::CopyMethod>) { reported = true; };
            ASSERT_TRUE(worker.submit(files, done));
        }
        EXPECT_TRUE(exists("a.raw"));
    } // the io_context never ran: no callback ran, whether each copy was done, half-way or not started
    for (auto const* name : { "a.raw", "b.raw", "c.raw" })
        EXPECT_FALSE(exists(name)) << name;
    ioc.run(); // completions posted before the worker went do nothing now
    EXPECT_FALSE(reported);
}

TEST_F(CopyWorkerTest, TakesAtMostMaxJobs)
{
    boost::asio::io_context ioc;
    CopyWorker worker(ioc);
    CopyWorker::Finished nothing = [](Result<block::CopyMethod>) { };
    for (size_t i = 0; i < CopyWorker::MAX_JOBS; i++) {
        auto files = job(fmt::format("j{}.raw", i));
        CopyWorker::Finished done = nothing;
        ASSERT_TRUE(worker.submit(files, done));
    }
    // Their callbacks have not run (the io_context does not run), so all of them still count.
    auto files = job("one-too-many.raw");
    CopyWorker::Finished done = nothing;
    auto r = worker.submit(files, done);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::Busy);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_TRUE(files[0].dst.valid()) << "a refused job leaves the files to the caller";
    EXPECT_TRUE(static_cast<bool>(done)) << "and the callback";
}
