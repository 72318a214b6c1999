import ArgumentParser
import Assets
import Foundation

extension RelayCommand {
    struct DataSets: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Download the benchmark data (GSM8K, MATH-500 and the MATH subject splits).",
            subcommands: [Fetch.self])
    }
}

extension RelayCommand.DataSets {
    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extract the GSM8K and MATH request files into $RELAY_HOME/data (default ~/.cache/relay/data).")

        func run() throws {
            do {
                try AssetStore().fetchData()
            } catch {
                throw assetFailure(error)
            }
        }
    }
}
