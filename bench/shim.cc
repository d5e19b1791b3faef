// shim.cc - the only C++ of the benchmarks: registers each C body of
// core_bench.c with Google Benchmark, drives its iteration loop, and after
// the run prints how far a snapback get is from a bare hash table lookup.
//
// Each body runs all of a run's iterations in one call, so the timed region
// holds nothing but the body's own loop: KeepRunningBatch() is asked for
// exactly the iteration count Google Benchmark chose.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "core_bench.h"

namespace
{

bench_env *g_env;
std::thread::id g_main_thread;

void drive(benchmark::State &state, const bench_case *c)
{
    bool on_main = std::this_thread::get_id() == g_main_thread;

    // Google Benchmark starts fresh threads for multi-threaded runs; the
    // main thread, which runs thread 0, stays registered throughout.
    if (!on_main)
        bench_thread_enter();
    // Cases with a prepare step are single-threaded (bench_case.threads).
    if (c->prepare != nullptr && c->prepare(g_env, state.max_iterations))
        state.SkipWithError("could not build the fixture");
    uint64_t errors = bench_env_errors(g_env);
    uint64_t items = 0;
    while (state.KeepRunningBatch(state.max_iterations)) {
        items += c->run(g_env, state.thread_index(), state.max_iterations);
        if (c->manual_time)
            state.SetIterationTime(
                static_cast<double>(bench_env_timed_ns(g_env)) / 1e9);
    }
    if (bench_env_errors(g_env) != errors)
        state.SkipWithError("a write failed");
    state.SetItemsProcessed(static_cast<int64_t>(items));
    if (!on_main)
        bench_thread_leave();
}

// Prints the console table as usual and keeps each benchmark's real time
// per iteration, in nanoseconds, and its items per second, for the
// summary: the median when the run has repetitions, else the single
// measurement.
class Reporter : public benchmark::ConsoleReporter
{
  public:
    std::map<std::string, double> ns_per_op;
    std::map<std::string, double> items_per_s;

    void ReportRuns(const std::vector<Run> &runs) override
    {
        for (const Run &run : runs) {
            bool median = run.run_type == Run::RT_Aggregate &&
                          run.aggregate_name == "median";
            if ((run.run_type != Run::RT_Iteration && !median) ||
                run.error_occurred)
                continue;
            double ns =
                run.GetAdjustedRealTime() *
                benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                benchmark::GetTimeUnitMultiplier(run.time_unit);
            ns_per_op[run.run_name.str()] = ns;
            auto rate = run.counters.find("items_per_second");
            if (rate != run.counters.end())
                items_per_s[run.run_name.str()] = rate->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

void print_ratio(const Reporter &r, const char *ours, const char *bare)
{
    auto a = r.ns_per_op.find(ours), b = r.ns_per_op.find(bare);
    if (a == r.ns_per_op.end() || b == r.ns_per_op.end() || b->second <= 0) {
        std::printf("%s / %s: not measured in this run\n", ours, bare);
        return;
    }
    std::printf("%s / %s: %.1f ns / %.1f ns = %.2f\n", ours, bare, a->second,
                b->second, a->second / b->second);
}

// The ratio of two rates, such as reads per second with and without a
// concurrent writer.
void print_rate_ratio(const Reporter &r, const char *a_name, const char *b_name)
{
    auto a = r.items_per_s.find(a_name), b = r.items_per_s.find(b_name);
    if (a == r.items_per_s.end() || b == r.items_per_s.end() ||
        b->second <= 0) {
        std::printf("%s / %s: not measured in this run\n", a_name, b_name);
        return;
    }
    std::printf("%s / %s: %.0f/s / %.0f/s = %.2f\n", a_name, b_name, a->second,
                b->second, a->second / b->second);
}

void register_cases()
{
    unsigned count;
    const bench_case *cases = bench_cases(&count);

    for (unsigned i = 0; i < count; i++) {
        auto *b = benchmark::RegisterBenchmark(cases[i].name, drive, &cases[i]);
        if (cases[i].threads > 1)
            b->Threads(1)->Threads(2)->UseRealTime();
        if (cases[i].manual_time)
            b->UseManualTime();
    }
}

} // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;

    g_main_thread = std::this_thread::get_id();
    bench_thread_enter();
    g_env = bench_env_open();
    if (g_env == nullptr) {
        std::fprintf(stderr, "core_bench: could not build the fixture\n");
        return 1;
    }
    register_cases();

    Reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    std::printf("\n");
    print_ratio(reporter, "get_hit", "bare_lfht_lookup");
    print_ratio(reporter, "get_hit_hot", "bare_lfht_lookup_hot");
    print_ratio(reporter, "get_hit_threads/real_time/threads:2",
                "bare_lfht_lookup_threads/real_time/threads:2");
    print_rate_ratio(reporter, "get_during_cs_rollback_100k/manual_time",
                     "get_beside_idle_writer_100k/manual_time");
    print_rate_ratio(reporter, "get_beside_busy_thread_100k/manual_time",
                     "get_beside_idle_writer_100k/manual_time");

    bench_env_close(g_env);
    bench_thread_leave();
    benchmark::Shutdown();
    return 0;
}
