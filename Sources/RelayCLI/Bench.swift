import ArgumentParser
import Engine
import Foundation
import Kernels

extension RelayCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure prefill and decode speed, and the cost of one forward over a few new positions.",
            discussion: "Like llama-bench: prefill of -p tokens and decode of -n tokens from an empty context, repeated -r times. scripts/bench.sh runs this beside llama.cpp's llama-bench and prints the ratios.")

        @OptionGroup var model: ModelOptions

        @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens to prefill.")
        var nPrompt = 512

        @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Tokens to decode.")
        var nGen = 128

        @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Repetitions; the median is reported.")
        var repetitions = 3

        @Option(help: "Context before the verification timings.")
        var verifyContext = 256

        @Option(help: "New-position counts of the verification timings, comma separated.")
        var verifyCounts = "1,2,4,8,16"

        @Option(help: "Sequence counts of the batched decode timings (one new position in each of N caches, as server slots decode), comma separated.")
        var sequenceCounts = "1,4"

        @Flag(help: "Print one JSON object.")
        var json = false

        func validate() throws {
            for (flag, list) in [("--verify-counts", verifyCounts), ("--sequence-counts", sequenceCounts)] where positiveIntegers(list) == nil {
                throw ValidationError("\(flag) '\(list)': expected positive numbers, comma separated, such as 1,4")
            }
        }

        func run() throws {
            let m = try model.load()
            let counts = positiveIntegers(verifyCounts)!, seqCounts = positiveIntegers(sequenceCounts)!   // checked in validate()
            if let most = seqCounts.max(), most > m.maxBatch {
                throw ValidationError("--sequence-counts: \(most) sequences, but one forward takes at most \(m.maxBatch)")
            }
            let cache = m.makeCache(capacity: max(nPrompt + nGen, verifyContext + 64))
            // Deterministic pseudo-random tokens, as llama-bench uses random ids.
            var rng = Xoshiro256(seed: 42)
            let prompt = (0..<nPrompt).map { _ in Int32(rng.next() % UInt64(m.config.vocabSize)) }

            func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
            func timed(_ body: () throws -> Void) rethrows -> Double {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }

            _ = try m.forward(Array(prompt.prefix(16)) + [1], cache: cache)   // warm-up: page in weights
            var prefill: [Double] = [], decode: [Double] = []
            for _ in 0..<repetitions {
                cache.truncate(to: 0)
                if nPrompt > 0 { prefill.append(try timed { _ = try m.forward(prompt, cache: cache) }) }
                cache.truncate(to: 0)
                if nGen > 0 {
                    decode.append(try timed {
                        var token: Int32 = 1
                        for _ in 0..<nGen {
                            let logits = try m.forward([token], cache: cache)
                            token = logits.withUnsafeBufferPointer(argmax)
                        }
                    })
                }
            }
            var verify: [(Int, Double)] = []
            let context = Array(prompt.prefix(verifyContext)) + Array(repeating: 1, count: max(0, verifyContext - prompt.count))
            cache.truncate(to: 0)
            _ = try m.forward(context, cache: cache)
            for n in counts {
                var times: [Double] = []
                for _ in 0..<max(repetitions, 5) {
                    cache.truncate(to: context.count)
                    times.append(try timed { _ = try m.forward(Array(repeating: 1, count: n), cache: cache, logits: .all) })
                }
                verify.append((n, median(times)))
            }
            // Batched decode: one step in each of n caches holding the same context, in one forward.
            var batched: [(Int, Double)] = []
            if let most = seqCounts.max() {
                let caches = (0..<most).map { _ in m.makeCache(capacity: context.count + 8) }
                for c in caches { _ = try m.forward(context, cache: c) }
                for n in seqCounts {
                    var times: [Double] = []
                    for _ in 0..<max(repetitions, 5) {
                        for c in caches { c.truncate(to: context.count) }
                        times.append(try timed { _ = try m.forward(caches.prefix(n).map { Model.Row(cache: $0, tokens: [1]) }) })
                    }
                    batched.append((n, median(times)))
                }
            }
            let pp = nPrompt > 0 ? Double(nPrompt) / median(prefill) : 0
            let tg = nGen > 0 ? Double(nGen) / median(decode) : 0
            // Decoding is bound by reading memory: bytes per token (weights, and the cache at the
            // mean position of the decode run) at the measured speed, against this machine's reads.
            let rss = peakRSSMegabytes()   // before the bandwidth test's buffer
            let bandwidth = Threads.readBandwidth()
            let bytesPerToken = Double(m.weightBytesPerToken + m.cacheBytes(position: nGen / 2))
            let reached = tg * bytesPerToken / bandwidth
            let name = URL(fileURLWithPath: m.file.path).lastPathComponent
            if json {
                let object: [String: Any] = [
                    "model": name, "threads": Threads.count, "isa": Threads.isa,
                    "prefill_tokens_per_second": pp, "decode_tokens_per_second": tg,
                    "n_prompt": nPrompt, "n_gen": nGen,
                    "verify_ms": Dictionary(uniqueKeysWithValues: verify.map { ("\($0.0)", $0.1 * 1000) }),
                    "batched_decode_ms": Dictionary(uniqueKeysWithValues: batched.map { ("\($0.0)", $0.1 * 1000) }),
                    "peak_rss_mb": rss,
                    "read_bandwidth_gb_per_s": bandwidth / 1e9, "bytes_per_token": bytesPerToken, "bandwidth_fraction": reached,
                ]
                writeOut(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n")
            } else {
                writeOut(String(format: "%@  %@, %d threads\n", name, Threads.isa, Threads.count))
                writeOut(String(format: "prefill pp%d: %8.1f tok/s\n", nPrompt, pp))
                writeOut(String(format: "decode  tg%d: %8.1f tok/s\n", nGen, tg))
                writeOut(String(format: "memory: %.1f GB/s read (this machine, %d threads); decode reads %.0f MB per token: %.0f%% of it\n",
                                bandwidth / 1e9, Threads.count, bytesPerToken / 1e6, reached * 100))
                writeOut("forward after \(context.count) tokens:\n")
                for (n, t) in verify {
                    writeOut(String(format: "  %2d new positions: %7.2f ms (%.2fx one position)\n", n, t * 1000, t / verify[0].1))
                }
                if !batched.isEmpty { writeOut("one decode step in each of N sequences of \(context.count) tokens, one forward:\n") }
                for (n, t) in batched {
                    writeOut(String(format: "  %2d sequences: %7.2f ms (%.2fx one sequence)\n", n, t * 1000, t / batched[0].1))
                }
                writeOut(String(format: "peak memory: %.0f MB\n", rss))
            }
        }
    }
}

/// Peak resident memory of this process so far (VmHWM).
func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}
