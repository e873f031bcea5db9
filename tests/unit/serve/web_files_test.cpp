// The web UI's static files: what is served with which type, and every way out of the directory refused.
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

#include "serve/web_files.h"

namespace hako::serve {
namespace {

class WebFiles : public ::testing::Test {
protected:
    void SetUp() override
    {
        char tmpl[] = "/tmp/hako-web-test.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        m_dir = tmpl;
        write("index.html", "<!doctype html>page");
        write("app.js", "js");
        write("app.css", "css");
        write(".secret.js", "hidden");
        write("notes.txt", "no type");
        std::filesystem::create_directory(m_dir + "/sub");
        write("sub/x.js", "nested");
        write("dir.js/inner.js", "", true);
        std::filesystem::create_symlink("/etc/hostname", m_dir + "/link.js");
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }
    void write(std::string const& name, std::string const& text, bool make_parent = false)
    {
        if (make_parent)
            std::filesystem::create_directories(std::filesystem::path(m_dir + "/" + name).parent_path());
        std::ofstream(m_dir + "/" + name) << text;
    }
    std::string m_dir;
};

TEST(WebContentType, KnownNamesOnly)
{
    EXPECT_EQ(web_content_type("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(web_content_type("app.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(web_content_type("app.css"), "text/css; charset=utf-8");
    EXPECT_EQ(web_content_type("app.js.map"), "application/json");
    EXPECT_FALSE(web_content_type(".js"));
    EXPECT_FALSE(web_content_type(".."));
    EXPECT_FALSE(web_content_type(".hidden.js"));
    EXPECT_FALSE(web_content_type("a b.js"));
    EXPECT_FALSE(web_content_type("a/b.js"));
    EXPECT_FALSE(web_content_type("a\\b.js"));
    EXPECT_FALSE(web_content_type("passwd"));
    EXPECT_FALSE(web_content_type("notes.txt"));
    EXPECT_FALSE(web_content_type(""));
    std::string long_name(200, 'a'); // built in place: `std::string(200, 'a') + ".js"` trips GCC 12's -Warray-bounds
    long_name.append(".js");
    EXPECT_FALSE(web_content_type(long_name));
}

TEST_F(WebFiles, ServesIndexAndAssets)
{
    auto index = web_file(m_dir, {});
    EXPECT_EQ(index.status, 200u);
    EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(index.raw, "<!doctype html>page");
    auto js = web_file(m_dir, { "app.js" });
    EXPECT_EQ(js.status, 200u);
    EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(js.raw, "js");
    EXPECT_EQ(web_file(m_dir, { "app.css" }).raw, "css");
}

TEST_F(WebFiles, RefusesEverythingElse)
{
    for (std::vector<std::string> const& path : std::vector<std::vector<std::string>> {
             { ".secret.js" }, { "notes.txt" }, { "sub", "x.js" }, { "sub" }, { "link.js" }, { "dir.js" }, { ".." },
             { "..", "etc", "passwd" }, { "missing.js" }, { "" } }) {
        auto r = web_file(m_dir, path);
        EXPECT_EQ(r.status, 404u) << path[0];
        EXPECT_TRUE(r.content_type.empty());
        EXPECT_TRUE(r.body.contains("error"));
    }
    EXPECT_EQ(web_file("", {}).status, 404u) << "no web directory: no UI";
    EXPECT_EQ(web_file(m_dir + "/nonexistent", {}).status, 404u);
}

} // namespace
} // namespace hako::serve
