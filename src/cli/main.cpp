#include <cstdio>

int main()
{
    std::puts("hako " HAKO_VERSION);
    return 0;
}
