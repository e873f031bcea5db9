// VM definitions: validation of names, paths and every key, JSON round trip, patching, and the hako run argv.
#include <gtest/gtest.h>

#include "serve/vm_config.h"

namespace hako::serve {
namespace {

using nlohmann::json;

constexpr char const* IMAGES = "/var/lib/hako/images";

TEST(VmConfig, Names)
{
    EXPECT_TRUE(valid_vm_name("a"));
    EXPECT_TRUE(valid_vm_name("web-1.example_2"));
    EXPECT_TRUE(valid_vm_name(std::string(63, 'x')));
    EXPECT_FALSE(valid_vm_name(std::string(64, 'x')));
    EXPECT_FALSE(valid_vm_name(""));
    EXPECT_FALSE(valid_vm_name("-a"));
    EXPECT_FALSE(valid_vm_name(".a"));
    EXPECT_FALSE(valid_vm_name(".."));
    EXPECT_FALSE(valid_vm_name("a/b"));
    EXPECT_FALSE(valid_vm_name("a b"));
    EXPECT_FALSE(valid_vm_name(std::string("a\0b", 3)));
}

TEST(VmConfig, Paths)
{
    EXPECT_TRUE(check_absolute_path("/srv/vm/disk.img", "p"));
    EXPECT_FALSE(check_absolute_path("disk.img", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/../etc/shadow", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/./a", "p"));
    EXPECT_FALSE(check_absolute_path("/srv//a", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/a/", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/a,format=qcow2", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/a=b", "p"));
    EXPECT_FALSE(check_absolute_path("/srv/a\nb", "p"));
    EXPECT_FALSE(check_absolute_path("/" + std::string(2000, 'a'), "p"));
    auto r = resolve_disk_path("data.qcow2", IMAGES);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "/var/lib/hako/images/data.qcow2");
    EXPECT_FALSE(resolve_disk_path("../data.qcow2", IMAGES));
    EXPECT_FALSE(resolve_disk_path("sub/data.qcow2", IMAGES));
    EXPECT_FALSE(resolve_disk_path("..", IMAGES));
    EXPECT_FALSE(resolve_disk_path("", IMAGES));
}

TEST(VmConfig, DefaultsAndRoundTrip)
{
    auto c = config_from_json(json::object(), IMAGES);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->cpus, 1u);
    EXPECT_EQ(c->memory_mib, 256u);
    json const full = {
        { "cpus", 2 }, { "memory_mib", 512 },
        { "disks", json::array({ { { "path", "root.qcow2" }, { "format", "qcow2" }, { "if", "ide" }, { "readonly", true } } }) },
        { "cdroms", json::array({ "/iso/debian.iso" }) },
        { "nics", json::array({ { { "mode", "user" }, { "model", "e1000" }, { "mac", "52:54:00:12:34:56" } },
                      { { "mode", "tap" }, { "tap", "tap0" } } }) },
        { "vga", "std" }, { "vnc", true }, { "boot", json::array({ "cdrom", "disk" }) }, { "firmware", "/usr/share/seabios/bios.bin" },
        { "restart", "on-failure" },
    };
    auto f = config_from_json(full, IMAGES);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(f->disks.at(0).path, "/var/lib/hako/images/root.qcow2");
    json const out = config_to_json(*f);
    auto again = config_from_json(out, IMAGES);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(config_to_json(*again), out);
    EXPECT_EQ(out["restart"], "on-failure");
    EXPECT_EQ(out["nics"][1]["tap"], "tap0");
}

TEST(VmConfig, RefusesBadValues)
{
    std::vector<json> const bad = {
        json::array(),
        { { "cpus", 0 } }, { { "cpus", 256 } }, { { "cpus", "2" } }, { { "cpus", -1 } }, { { "cpus", 1.5 } },
        { { "memory_mib", 1 } }, { { "memory_mib", true } },
        { { "disks", json::array({ { { "format", "raw" } } }) } },
        { { "disks", json::array({ { { "path", "/a" }, { "format", "vmdk" } } }) } },
        { { "disks", json::array({ { { "path", "/a" }, { "if", "scsi" } } }) } },
        { { "disks", json::array({ { { "path", "/a" }, { "size", 1 } } }) } },
        { { "disks", json::array({ "/a" }) } },
        { { "disks", json(std::vector<json>(17, { { "path", "/a" } })) } },
        { { "nics", json::array({ { { "mode", "tap" } } }) } },
        { { "nics", json::array({ { { "mode", "user" }, { "tap", "tap0" } } }) } },
        { { "nics", json::array({ { { "mode", "tap" }, { "tap", "../x" } } }) } },
        { { "nics", json::array({ { { "model", "ne2000" } } }) } },
        { { "nics", json::array({ { { "mac", "52:54:00:12:34" } } }) } },
        { { "vga", "qxl" } }, { { "vnc", true } },
        { { "boot", json::array({ "floppy" }) } }, { { "boot", json::array({ "disk", "disk" }) } },
        { { "kernel", "vmlinuz" } }, { { "cmdline", "console=ttyS0" } },
        { { "kernel", "/k" }, { "cmdline", "a\nb" } },
        { { "kernel", "/k" }, { "cmdline", std::string(5000, 'a') } },
        { { "restart", "maybe" } }, { { "debug_exit", "yes" } }, { { "colour", "red" } },
    };
    for (auto const& j : bad)
        EXPECT_FALSE(config_from_json(j, IMAGES)) << j.dump();
}

TEST(VmConfig, PatchKeepsTheRest)
{
    auto base = config_from_json({ { "cpus", 2 }, { "kernel", "/k" }, { "cmdline", "x" } }, IMAGES);
    ASSERT_TRUE(base);
    auto p = config_patch(*base, { { "memory_mib", 128 } }, IMAGES);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->cpus, 2u);
    EXPECT_EQ(p->memory_mib, 128u);
    EXPECT_EQ(p->cmdline, "x");
    EXPECT_FALSE(config_patch(*base, { { "kernel", "" } }, IMAGES)); // a cmdline without a kernel
}

TEST(VmConfig, RunArgv)
{
    auto c = config_from_json({ { "cpus", 2 }, { "memory_mib", 64 }, { "kernel", "/k" }, { "cmdline", "a b" },
                                  { "disks", json::array({ { { "path", "/d.img" }, { "readonly", true } } }) },
                                  { "nics", json::array({ { { "mode", "user" }, { "model", "e1000" } } }) },
                                  { "debug_exit", true } },
        IMAGES);
    ASSERT_TRUE(c);
    auto const argv = run_argv(*c, { "/s/api.sock", "/s/vnc.sock" });
    std::vector<std::string> const want { "run", "--cpus", "2", "--memory", "64M", "--kernel", "/k", "--cmdline", "a b",
        "--disk", "path=/d.img,format=raw,if=virtio,readonly=on", "--net", "user,model=e1000", "--vga", "none",
        "--debug-exit", "--api-socket", "/s/api.sock" };
    EXPECT_EQ(argv, want);
}

} // namespace
} // namespace hako::serve
