#include "vmm/instruction_emulation.h"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <string_view>

#include "base/log.h"
#include "emu/emulator.h"
#include "emu/interrupt.h"

namespace hako::vmm {

void GuestPhysicalMemory::read(uint64_t pa, std::span<uint8_t> out)
{
    if (m_memory.read(memory::GuestAddr(pa), out))
        return;
    m_mmio.read(pa, out);
}

void GuestPhysicalMemory::write(uint64_t pa, std::span<uint8_t const> in)
{
    if (m_memory.is_ram(memory::GuestAddr(pa), in.size())) {
        if (m_memory.write(memory::GuestAddr(pa), in))
            return;
    }
    // ROM regions are not RAM: writes to them exit to the VMM as MMIO on the real path, so go to the bus here too.
    m_mmio.write(pa, in);
}

bool GuestPhysicalMemory::compare_exchange(uint64_t pa, std::span<uint8_t> expected, std::span<uint8_t const> desired)
{
    if (auto r = m_memory.compare_exchange(memory::GuestAddr(pa), expected, desired))
        return *r;
    // Not one aligned RAM operand (MMIO, ROM, or unaligned): read, compare, write under a lock. Atomic against other
    // emulated instructions only.
    std::lock_guard guard(m_slow_lock);
    std::array<uint8_t, 16> current {};
    auto cur = std::span(current).first(std::min(expected.size(), current.size()));
    read(pa, cur);
    if (std::equal(cur.begin(), cur.end(), expected.begin(), expected.end())) {
        write(pa, desired);
        return true;
    }
    std::copy(cur.begin(), cur.end(), expected.begin());
    return false;
}

static std::string hex(std::span<uint8_t const> bytes)
{
    std::string s;
    for (auto b : bytes)
        s += fmt::format("{}{:02x}", s.empty() ? "" : " ", b);
    return s;
}

static char const* vector_name(uint8_t v)
{
    static constexpr std::array<char const*, 21> names { "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF",
        "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE" };
    return v < names.size() ? names[v] : "#?";
}

InstructionEmulation::Result InstructionEmulation::handle(kvm::Vcpu& vcpu)
{
    auto state = vcpu.emu_state();
    if (!state) {
        HAKO_ERROR("Guest stopped: reading vCPU {}'s state for the instruction emulator: {}", vcpu.id(),
            state.error().message());
        return Result::Stop;
    }
    uint64_t const rip = state->rip;
    auto const mode = emu::cpu_mode(*state);
    emu::Outcome out = emu::emulate(*state, m_physical);
    auto const bytes = hex(std::span(out.bytes).first(out.length));
    auto where = [&] {
        return fmt::format("RIP {:#x} (CS {:#06x} base {:#x}, {} mode) on vCPU {}: bytes [{}]", rip,
            state->segment(emu::Seg::Cs).selector, state->segment(emu::Seg::Cs).base, emu::cpu_mode_name(mode),
            vcpu.id(), bytes);
    };
    if (out.kind == emu::Outcome::Kind::Unsupported) {
        HAKO_ERROR("Guest stopped: KVM could not emulate `{}` and neither can hako ({}) at {}", out.mnemonic,
            out.detail, where());
        return Result::Stop;
    }
    {
        std::lock_guard guard(m_lock);
        auto& rep = m_repeat[vcpu.id()];
        if (out.kind == emu::Outcome::Kind::Faulted) {
            rep.faults = rep.rip == rip ? rep.faults + 1 : 1;
            rep.rip = rip;
            ++m_counts[fmt::format("{} ({})", out.mnemonic, vector_name(out.exception->vector))];
            if (rep.faults >= MAX_REPEATED_FAULTS) {
                HAKO_ERROR("Guest stopped: `{}` raised {} {} times in a row at {}", out.mnemonic,
                    vector_name(out.exception->vector), rep.faults, where());
                return Result::Stop;
            }
        } else {
            rep = Repeat {};
            ++m_counts[out.mnemonic];
            if (std::string_view(out.mnemonic).starts_with("iret"))
                m_nested[vcpu.id()] = 0;
        }
    }
    if (out.exception && out.exception->vector == emu::VEC_PF) {
        state->cr2 = out.exception->cr2;
        out.dirty |= emu::DIRTY_SREGS;
    }
    if (auto r = vcpu.set_emu_state(*state, out.dirty); !r) {
        HAKO_ERROR("Guest stopped: writing back `{}` at {}: {}", out.mnemonic, where(), r.error().message());
        return Result::Stop;
    }
    if (out.exception) {
        HAKO_DEBUG("emulated `{}` at {} raised {}", out.mnemonic, where(), vector_name(out.exception->vector));
        if (auto r = vcpu.inject_exception(*out.exception); !r) {
            HAKO_ERROR("Guest stopped: injecting {} for `{}` at {}: {}", vector_name(out.exception->vector),
                out.mnemonic, where(), r.error().message());
            return Result::Stop;
        }
    }
    return Result::Resume;
}

/// The IR of highest priority in service on one PIC (fully nested mode: the one it accepted last), if any.
static std::optional<uint8_t> newest_in_service(kvm::Vm::PicState const& pic)
{
    if (pic.auto_eoi) // no in-service bit is kept
        return std::nullopt;
    for (unsigned k = 0; k < 8; ++k) {
        auto const ir = static_cast<uint8_t>((pic.priority_add + k) & 7);
        if (pic.isr & (1u << ir))
            return ir;
    }
    return std::nullopt;
}

InstructionEmulation::Result InstructionEmulation::deliver_refused_interrupt(kvm::Vcpu& vcpu, kvm::Vm const& vm)
{
    auto state = vcpu.emu_state();
    if (!state)
        return Result::Stop;
    auto const mode = emu::cpu_mode(*state);
    if ((mode != emu::CpuMode::Protected16 && mode != emu::CpuMode::Protected32) || !(state->rflags & emu::RFLAGS_IF))
        return Result::Stop;
    auto master = vm.pic_state(false);
    if (!master)
        return Result::Stop;
    auto ir = newest_in_service(*master);
    if (!ir)
        return Result::Stop;
    auto vector = static_cast<uint8_t>(master->irq_base + *ir);
    if (*ir == 2) { // the cascade: the slave's
        auto slave = vm.pic_state(true);
        if (!slave)
            return Result::Stop;
        if (auto sir = newest_in_service(*slave))
            vector = static_cast<uint8_t>(slave->irq_base + *sir);
    }
    uint64_t const rip = state->rip;
    {
        std::lock_guard guard(m_lock);
        if (++m_nested[vcpu.id()] > MAX_NESTED_DELIVERIES) {
            HAKO_ERROR("vCPU {1}: {0} interrupts delivered without an IRET (last vector {2:#x} at RIP {3:#x}): its "
                       "handlers fault with interrupts enabled; the triple fault KVM reported stands",
                MAX_NESTED_DELIVERIES, vcpu.id(), vector, rip);
            return Result::Stop;
        }
    }
    emu::LinearMemory mem(*state, m_physical);
    emu::Event event { vector, std::nullopt, true };
    uint32_t dirty = 0;
    // The interrupt, then a fault met while delivering it, then a fault met while delivering that one as #DF.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto r = emu::deliver_event(*state, mem, event);
        if (auto const* u = std::get_if<emu::Unsupported>(&r)) {
            HAKO_ERROR("vCPU {2}: KVM cannot deliver vector {0:#x} at RIP {1:#x} ({3} mode) on this host and neither "
                       "can hako ({4}): the triple fault KVM reported stands",
                event.vector, rip, vcpu.id(), emu::cpu_mode_name(mode), u->what);
            return Result::Stop;
        }
        if (auto const* d = std::get_if<uint32_t>(&r)) {
            if (auto w = vcpu.set_emu_state(*state, dirty | *d); !w) {
                HAKO_ERROR("vCPU {1}: writing back the delivery of vector {0:#x}: {2}; the triple fault KVM reported "
                           "stands", event.vector, vcpu.id(), w.error().message());
                return Result::Stop;
            }
            std::lock_guard guard(m_lock);
            ++m_counts[event.vector == vector ? fmt::format("interrupt {:#x}", vector)
                                              : fmt::format("interrupt {:#x} ({})", vector, vector_name(event.vector))];
            return Result::Resume;
        }
        auto const& x = std::get<emu::Exception>(r);
        if (x.vector == emu::VEC_PF) {
            state->cr2 = x.cr2;
            dirty |= emu::DIRTY_SREGS;
        }
        event = attempt == 0 ? emu::Event { x.vector, x.error_code, true } : emu::Event { 8 /* #DF */, 0u, true };
    }
    HAKO_INFO("vCPU {}: triple fault delivering vector {:#x} at RIP {:#x} through the guest's IDT", vcpu.id(), vector,
        rip);
    return Result::Stop;
}

std::map<std::string, uint64_t> InstructionEmulation::counts() const
{
    std::lock_guard guard(m_lock);
    return m_counts;
}

} // namespace hako::vmm
