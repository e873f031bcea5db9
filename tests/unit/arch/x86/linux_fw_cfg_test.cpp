#include <gtest/gtest.h>

#include <cstdlib>

#include "arch/x86/linux_fw_cfg.h"
#include "base/bytes.h"
#include "base/file.h"

using namespace hako;
using namespace hako::arch::x86;

static std::vector<uint8_t> debian_bzimage()
{
    char const* env = std::getenv("HAKO_CACHE");
    auto data = read_file(std::string(env ? env : "/var/tmp/hako") + "/kernel/bzImage", 512ull << 20);
    if (!data)
        ADD_FAILURE() << "Debian bzImage missing: run scripts/fetch-guests.sh (the test command does)";
    return data ? *data : std::vector<uint8_t>();
}

TEST(LinuxFwCfg, SplitsAndPatchesTheBzImage)
{
    auto image = debian_bzimage();
    ASSERT_FALSE(image.empty());
    auto items = linux_fw_cfg_items(image, "console=ttyS0", std::vector<uint8_t>(10000, 7), 256ull << 20);
    ASSERT_TRUE(items) << items.error().message();
    size_t const setup = (image[0x1f1] + 1u) * 512u;
    ASSERT_EQ(items->setup.size(), setup);
    EXPECT_EQ(items->kernel.size(), image.size() - setup);
    EXPECT_EQ(items->setup_addr, 0x10000u);
    EXPECT_EQ(items->kernel_addr, 0x100000u);
    EXPECT_EQ(get_le32(&items->setup[0x228]), items->cmdline_addr);
    EXPECT_EQ(items->setup[0x210], 0xb0);
    EXPECT_TRUE(items->setup[0x211] & 0x80);
    EXPECT_EQ(std::string(items->cmdline.begin(), items->cmdline.end() - 1), "console=ttyS0");
    EXPECT_EQ(items->cmdline.back(), 0);
    EXPECT_EQ(get_le32(&items->setup[0x218]), items->initrd_addr);
    EXPECT_EQ(get_le32(&items->setup[0x21c]), 10000u);
    EXPECT_EQ(items->initrd_addr % 4096, 0u);
    EXPECT_LE(items->initrd_addr + 10000u, (256u << 20) - 128 * 1024);
    EXPECT_EQ(items->kernel[0], image[setup]);
}

TEST(LinuxFwCfg, RejectsBadInput)
{
    auto image = debian_bzimage();
    ASSERT_FALSE(image.empty());
    EXPECT_FALSE(linux_fw_cfg_items(std::vector<uint8_t>(4096, 0), "", {}, 256ull << 20));
    EXPECT_FALSE(linux_fw_cfg_items(image, std::string(5000, 'x'), {}, 256ull << 20));
    std::vector<uint8_t> cut(image.begin(), image.begin() + 100000);
    EXPECT_FALSE(linux_fw_cfg_items(cut, "", {}, 256ull << 20));
    EXPECT_FALSE(linux_fw_cfg_items(image, "", std::vector<uint8_t>(200ull << 20), 256ull << 20)); // initrd too large
}
