// The SQLite store: insert, get, list, update, remove, duplicate names, and persistence across reopen.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "serve/store.h"

namespace hako::serve {
namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/hako-store.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        m_dir = tmpl;
        m_path = m_dir + "/hako.db";
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }
    std::string m_dir, m_path;
};

TEST_F(StoreTest, InsertGetListUpdateRemove)
{
    auto store = Store::open(m_path);
    ASSERT_TRUE(store) << store.error().message();
    auto& s = **store;
    StoredVm a { "b-vm", "{\"cpus\":1}", "stopped", 0, std::nullopt, std::nullopt, 0, 0, 100 };
    StoredVm b { "a-vm", "{\"cpus\":2}", "stopped", 0, std::nullopt, std::nullopt, 0, 0, 200 };
    ASSERT_TRUE(s.insert(a));
    ASSERT_TRUE(s.insert(b));
    auto dup = s.insert(a);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().kind(), ErrorKind::Busy);
    auto all = s.list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].name, "a-vm"); // sorted by name
    EXPECT_EQ((*all)[1].created_at, 100);

    a.state = "crashed";
    a.pid = 1234;
    a.exit_signal = 9;
    a.exit_at = 555;
    a.restarts = 3;
    ASSERT_TRUE(s.update_run(a));
    ASSERT_TRUE(s.update_config("b-vm", "{\"cpus\":4}"));
    auto got = s.get("b-vm");
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->state, "crashed");
    EXPECT_EQ((*got)->pid, 1234);
    EXPECT_FALSE((*got)->exit_status.has_value());
    EXPECT_EQ((*got)->exit_signal, 9);
    EXPECT_EQ((*got)->restarts, 3);
    EXPECT_EQ((*got)->config, "{\"cpus\":4}");

    EXPECT_EQ(s.update_config("nope", "{}").error().kind(), ErrorKind::NotFound);
    ASSERT_TRUE(s.remove("a-vm"));
    EXPECT_EQ(s.remove("a-vm").error().kind(), ErrorKind::NotFound);
    auto none = s.get("a-vm");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());
}

TEST_F(StoreTest, SurvivesReopen)
{
    {
        auto store = Store::open(m_path);
        ASSERT_TRUE(store);
        StoredVm vm { "keep", "{}", "running", 42, 0, std::nullopt, 7, 1, 9 };
        ASSERT_TRUE((*store)->insert(vm));
    }
    auto store = Store::open(m_path);
    ASSERT_TRUE(store);
    auto got = (*store)->get("keep");
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->state, "running");
    EXPECT_EQ((*got)->pid, 42);
    EXPECT_EQ((*got)->exit_status, 0);
}

TEST_F(StoreTest, RefusesAFileThatIsNotADatabase)
{
    FILE* f = std::fopen(m_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not an SQLite database, just some text long enough to look like a header........", f);
    std::fclose(f);
    EXPECT_FALSE(Store::open(m_path));
}

} // namespace
} // namespace hako::serve
