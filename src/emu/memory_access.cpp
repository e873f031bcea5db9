// The page walk of LinearMemory (Intel SDM vol. 3A, chapter 4 "Paging": 4.3 32-bit, 4.4 PAE, 4.5 4-level paging,
// 4.6 access rights, 4.7 page-fault exceptions, 4.8 accessed and dirty flags).
#include "emu/memory_access.h"

#include <array>

namespace hako::emu {

namespace {

constexpr uint64_t PTE_P = 1u << 0;
constexpr uint64_t PTE_RW = 1u << 1;
constexpr uint64_t PTE_US = 1u << 2;
constexpr uint64_t PTE_A = 1u << 5;
constexpr uint64_t PTE_D = 1u << 6;
constexpr uint64_t PTE_PS = 1u << 7;
constexpr uint64_t PTE_NX = 1ull << 63;
constexpr uint64_t ADDR_MASK = 0x000ffffffffff000ull; // bits 51:12
constexpr uint64_t PAGE = 4096;

uint64_t load_entry(PhysicalMemory& phys, uint64_t pa, size_t size)
{
    std::array<uint8_t, 8> b {};
    phys.read(pa, std::span(b).first(size));
    uint64_t v = 0;
    for (size_t i = size; i-- > 0;)
        v = (v << 8) | b[i];
    return v;
}

std::array<uint8_t, 8> to_bytes(uint64_t v)
{
    std::array<uint8_t, 8> b {};
    for (size_t i = 0; i < 8; ++i)
        b[i] = static_cast<uint8_t>(v >> (8 * i));
    return b;
}

// Sets `bits` in the entry at `pa` if it still holds `old`. False if the entry changed under us.
bool set_entry_bits(PhysicalMemory& phys, uint64_t pa, size_t size, uint64_t old, uint64_t bits)
{
    if ((old & bits) == bits)
        return true;
    auto expected = to_bytes(old);
    auto desired = to_bytes(old | bits);
    return phys.compare_exchange(pa, std::span(expected).first(size), std::span<uint8_t const>(desired).first(size));
}

struct Level {
    uint64_t pa;      // where the entry lives
    uint64_t value;   // what it held
};

} // namespace

uint64_t LinearMemory::wrap(uint64_t linear) const
{
    return (m_state.efer & EFER_LMA) ? linear : (linear & 0xffffffffu);
}

Translation LinearMemory::translate(uint64_t linear, Access access, bool implicit_supervisor)
{
    CpuState const& s = m_state;
    linear = wrap(linear);
    if (!(s.cr0 & CR0_PG))
        return linear;
    if (s.cr4 & CR4_LA57)
        return Unsupported { "5-level paging" };

    bool const user = cpu_cpl(s) == 3 && !implicit_supervisor;
    bool const write = access == Access::Write;
    bool const fetch = access == Access::Execute;
    bool const long_mode = (s.efer & EFER_LMA) != 0;
    bool const pae = (s.cr4 & CR4_PAE) != 0;
    bool const nxe = pae && (s.efer & EFER_NXE) != 0;

    auto fault = [&](uint32_t bits) -> Exception {
        uint32_t code = bits | (write ? PF_W : 0) | (user ? PF_U : 0);
        if (fetch && (nxe || (s.cr4 & CR4_SMEP)))
            code |= PF_I;
        return Exception { VEC_PF, code, linear };
    };

    // Up to 8 attempts: a walk restarts when another vCPU changes an entry between our read and our A/D update.
    for (int attempt = 0; attempt < 8; ++attempt) {
        std::array<Level, 4> levels {};
        size_t depth = 0;
        uint64_t page_size = PAGE;
        uint64_t leaf = 0;
        size_t entry_size = 8;

        if (long_mode) {
            if (!pae)
                return Unsupported { "long mode without PAE" };
            uint64_t table = s.cr3 & ADDR_MASK;
            constexpr std::array<unsigned, 4> shifts { 39, 30, 21, 12 };
            bool done = false;
            for (size_t i = 0; i < 4 && !done; ++i) {
                uint64_t pa = table + ((linear >> shifts[i]) & 0x1ff) * 8;
                uint64_t e = load_entry(m_phys, pa, 8);
                levels[depth++] = { pa, e };
                if (!(e & PTE_P))
                    return fault(0);
                if ((e & PTE_NX) && !nxe)
                    return fault(PF_P | PF_RSVD);
                if (e & PTE_PS) {
                    if (i == 0)
                        return fault(PF_P | PF_RSVD);
                    if (i == 1 || i == 2) {
                        page_size = 1ull << shifts[i];
                        leaf = e;
                        done = true;
                        continue;
                    }
                }
                if (i == 3) {
                    leaf = e;
                    done = true;
                    continue;
                }
                table = e & ADDR_MASK;
            }
        } else if (pae) {
            uint64_t pdpte_pa = (s.cr3 & 0xffffffe0u) + ((linear >> 30) & 3) * 8;
            uint64_t pdpte = load_entry(m_phys, pdpte_pa, 8);
            if (!(pdpte & PTE_P))
                return fault(0);
            // PDPTEs carry no access rights (SDM 4.4.1); they are not part of the rights check below.
            uint64_t pde_pa = (pdpte & ADDR_MASK) + ((linear >> 21) & 0x1ff) * 8;
            uint64_t pde = load_entry(m_phys, pde_pa, 8);
            levels[depth++] = { pde_pa, pde };
            if (!(pde & PTE_P))
                return fault(0);
            if ((pde & PTE_NX) && !nxe)
                return fault(PF_P | PF_RSVD);
            if (pde & PTE_PS) {
                page_size = 1ull << 21;
                leaf = pde;
            } else {
                uint64_t pte_pa = (pde & ADDR_MASK) + ((linear >> 12) & 0x1ff) * 8;
                uint64_t pte = load_entry(m_phys, pte_pa, 8);
                levels[depth++] = { pte_pa, pte };
                if (!(pte & PTE_P))
                    return fault(0);
                if ((pte & PTE_NX) && !nxe)
                    return fault(PF_P | PF_RSVD);
                leaf = pte;
            }
        } else {
            entry_size = 4;
            uint64_t pde_pa = (s.cr3 & 0xfffff000u) + ((linear >> 22) & 0x3ff) * 4;
            uint64_t pde = load_entry(m_phys, pde_pa, 4);
            levels[depth++] = { pde_pa, pde };
            if (!(pde & PTE_P))
                return fault(0);
            if ((pde & PTE_PS) && (s.cr4 & CR4_PSE)) {
                page_size = 1ull << 22;
                // PSE-36: bits 20:13 of the PDE are bits 39:32 of the page's address.
                leaf = (pde & 0xffc00fffu) | (((pde >> 13) & 0xff) << 32);
            } else {
                uint64_t pte_pa = (pde & 0xfffff000u) + ((linear >> 12) & 0x3ff) * 4;
                uint64_t pte = load_entry(m_phys, pte_pa, 4);
                levels[depth++] = { pte_pa, pte };
                if (!(pte & PTE_P))
                    return fault(0);
                leaf = pte;
            }
        }

        // Access rights: the combination over all levels (SDM 4.6).
        bool all_user = true, all_writable = true, any_nx = false;
        for (size_t i = 0; i < depth; ++i) {
            all_user = all_user && (levels[i].value & PTE_US);
            all_writable = all_writable && (levels[i].value & PTE_RW);
            any_nx = any_nx || (levels[i].value & PTE_NX);
        }
        if (user && !all_user)
            return fault(PF_P);
        if (write && !all_writable && (user || (s.cr0 & CR0_WP)))
            return fault(PF_P);
        if (fetch && nxe && any_nx)
            return fault(PF_P);
        if (!user && all_user) {
            if (fetch && (s.cr4 & CR4_SMEP))
                return fault(PF_P);
            bool const ac = (s.rflags & RFLAGS_AC) != 0 && !implicit_supervisor;
            if (!fetch && (s.cr4 & CR4_SMAP) && (cpu_cpl(s) == 3 || !ac))
                return fault(PF_P);
        }

        // Accessed on every level, dirty on the leaf for writes.
        bool raced = false;
        for (size_t i = 0; i < depth && !raced; ++i) {
            uint64_t bits = PTE_A | ((write && i + 1 == depth) ? PTE_D : 0);
            raced = !set_entry_bits(m_phys, levels[i].pa, entry_size, levels[i].value, bits);
        }
        if (raced)
            continue;
        uint64_t base = (page_size == (1ull << 22) && !pae) ? (leaf & 0xffffc00000ull) : (leaf & ADDR_MASK & ~(page_size - 1));
        return base | (linear & (page_size - 1));
    }
    // Another vCPU changed the entries under us 8 times in a row: report it rather than loop.
    return Unsupported { "page tables changing during the walk" };
}

LinearMemory::Fault LinearMemory::translate_range(uint64_t linear, size_t size, Access access, uint64_t* pa_first,
    uint64_t* pa_second, size_t* first_len, bool implicit_supervisor)
{
    size_t in_page = static_cast<size_t>(PAGE - (wrap(linear) & (PAGE - 1)));
    *first_len = size < in_page ? size : in_page;
    auto t = translate(linear, access, implicit_supervisor);
    if (auto* e = std::get_if<Exception>(&t))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&t))
        return *u;
    *pa_first = std::get<uint64_t>(t);
    *pa_second = 0;
    if (*first_len < size) {
        auto t2 = translate(linear + *first_len, access, implicit_supervisor);
        if (auto* e = std::get_if<Exception>(&t2))
            return *e;
        if (auto* u = std::get_if<Unsupported>(&t2))
            return *u;
        *pa_second = std::get<uint64_t>(t2);
    }
    return std::monostate {};
}

std::variant<std::monostate, Exception, Unsupported> LinearMemory::read(uint64_t linear, std::span<uint8_t> out,
    Access access, bool implicit_supervisor)
{
    if (out.size() > PAGE)
        return Unsupported { "access larger than a page" };
    uint64_t a = 0, b = 0;
    size_t first = 0;
    auto f = translate_range(linear, out.size(), access, &a, &b, &first, implicit_supervisor);
    if (!std::holds_alternative<std::monostate>(f))
        return f;
    m_phys.read(a, out.first(first));
    if (first < out.size())
        m_phys.read(b, out.subspan(first));
    return std::monostate {};
}

std::variant<std::monostate, Exception, Unsupported> LinearMemory::write(uint64_t linear, std::span<uint8_t const> in)
{
    if (in.size() > PAGE)
        return Unsupported { "access larger than a page" };
    uint64_t a = 0, b = 0;
    size_t first = 0;
    auto f = translate_range(linear, in.size(), Access::Write, &a, &b, &first);
    if (!std::holds_alternative<std::monostate>(f))
        return f;
    m_phys.write(a, in.first(first));
    if (first < in.size())
        m_phys.write(b, in.subspan(first));
    return std::monostate {};
}

std::variant<bool, Exception, Unsupported> LinearMemory::compare_exchange(uint64_t linear, std::span<uint8_t> expected,
    std::span<uint8_t const> desired, bool implicit_supervisor)
{
    if (expected.size() != desired.size() || expected.size() > 16)
        return Unsupported { "compare-exchange size" };
    uint64_t a = 0, b = 0;
    size_t first = 0;
    auto f = translate_range(linear, expected.size(), Access::Write, &a, &b, &first, implicit_supervisor);
    if (auto* e = std::get_if<Exception>(&f))
        return *e;
    if (auto* u = std::get_if<Unsupported>(&f))
        return *u;
    if (first == expected.size())
        return m_phys.compare_exchange(a, expected, desired);
    // Split across two pages: not atomic (a split lock, which hardware makes atomic with a bus lock).
    std::array<uint8_t, 16> current {};
    auto cur = std::span(current).first(expected.size());
    m_phys.read(a, cur.first(first));
    m_phys.read(b, cur.subspan(first));
    if (std::equal(cur.begin(), cur.end(), expected.begin())) {
        m_phys.write(a, desired.first(first));
        m_phys.write(b, desired.subspan(first));
        return true;
    }
    std::copy(cur.begin(), cur.end(), expected.begin());
    return false;
}

LinearMemory::Fetch LinearMemory::fetch(uint64_t linear, std::span<uint8_t> out)
{
    Fetch r;
    while (r.bytes < out.size()) {
        uint64_t at = linear + r.bytes;
        size_t in_page = static_cast<size_t>(PAGE - (wrap(at) & (PAGE - 1)));
        size_t n = std::min(in_page, out.size() - r.bytes);
        auto t = translate(at, Access::Execute);
        if (auto* e = std::get_if<Exception>(&t)) {
            r.stop = *e;
            return r;
        }
        if (auto* u = std::get_if<Unsupported>(&t)) {
            r.stop = *u;
            return r;
        }
        m_phys.read(std::get<uint64_t>(t), out.subspan(r.bytes, n));
        r.bytes += n;
    }
    return r;
}

} // namespace hako::emu
