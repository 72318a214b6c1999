import ArgumentParser
import Assets
import Foundation

extension RelayCommand {
    struct Models: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "models",
            abstract: "List and download the known models (cached under $RELAY_HOME, default ~/.cache/relay).",
            subcommands: [List.self, Fetch.self],
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

/// Prints `error: MESSAGE` to standard error and returns the exit code to throw.
func assetFailure(_ error: Error) -> Error {
    guard error is AssetError else { return error }
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}
