import ArgumentParser
import Assets
import Engine
import Foundation
import GGUF
import Progress

extension RelayCommand {
    struct Models: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "models",
            abstract: "List and download the known models (cached under $RELAY_HOME, default ~/.cache/relay).",
            subcommands: [List.self, Fetch.self, Identity.self],
            defaultSubcommand: List.self)
    }
}

extension RelayCommand.Models {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the known models, their sizes, and whether they are downloaded.")

        func run() throws {
            let store = AssetStore()
            var rows = [["NAME", "SIZE", "PRESENT", "PATH"]]
            for spec in Registry.models {
                let present = store.isVerified(spec.name) ? "yes" : store.isPresent(spec.name) ? "yes (unverified)" : "no"
                rows.append([spec.name, formatMB(spec.bytes), present, store.modelPath(spec)])
            }
            let widths = (0..<rows[0].count).map { col in rows.map { $0[col].count }.max() ?? 0 }
            for row in rows {
                let cells = row.enumerated().map { col, cell in
                    col == row.count - 1 ? cell : cell.padding(toLength: widths[col], withPad: " ", startingAt: 0)
                }
                print(cells.joined(separator: "  "))
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download models, join their parts and check their sha256.",
            discussion: "With no names and no --all, fetches the default model \(Registry.defaultModel).")

        @Argument(help: "Model names (\(Registry.modelNames.joined(separator: ", "))).")
        var names: [String] = []

        @Flag(help: "Fetch every known model.")
        var all = false

        func run() throws {
            for name in names where Registry.model(name) == nil {
                FileHandle.standardError.write(Data(
                    "error: unknown model '\(name)' (known: \(Registry.modelNames.joined(separator: ", ")))\n".utf8))
                throw ExitCode(1)
            }
            let store = AssetStore()
            let wanted = all ? Registry.modelNames : names.isEmpty ? [Registry.defaultModel] : names
            var seen = Set<String>()
            for name in wanted where seen.insert(name.lowercased()).inserted {
                do {
                    try store.fetchModel(name)
                } catch {
                    throw assetFailure(error)
                }
            }
        }
    }
}

extension RelayCommand.Models {
    struct Identity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the identity of models, which finds the shipped cue files and call heads for them.",
            discussion: "One JSON object per model and line: architecture, sizes, a SHA-256 of the vocabulary, the quantisation and a SHA-256 of a fixed sample of tensor data. The time each took goes to standard error.")

        @Argument(help: "GGUF paths or model names.")
        var models: [String]

        func run() throws {
            let store = AssetStore()
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            for name in models {
                let path: String
                do { path = try store.resolveModel(name) } catch { throw assetFailure(error) }
                let file = try GGUFFile(path: path)
                let (config, tokens) = (try ModelConfig(gguf: file), try file.stringArray(GGUFKey.Tokenizer.tokens))
                // Timed as a model load computes it: the tokenizer has read the tokens already.
                let (start, startCPU) = (DispatchTime.now().uptimeNanoseconds, threadCPUNanoseconds())
                let identity = ModelIdentity(file: file, config: config, tokens: tokens)
                let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6, cpu = Double(threadCPUNanoseconds() - startCPU) / 1e6
                writeOut(String(decoding: try enc.encode(identity), as: UTF8.self) + "\n")
                note(String(format: "%@: identity in %.1f ms (%.1f ms of CPU; %@ file)", name, ms, cpu, formatMB(Int64(file.size))))
            }
        }
    }
}

/// CPU time of the calling thread: what a computation costs on a machine busy with other work.
func threadCPUNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// Prints `error: MESSAGE` to standard error and returns the exit code to throw.
func assetFailure(_ error: Error) -> Error {
    guard error is AssetError else { return error }
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}
