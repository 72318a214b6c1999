import ArgumentParser

@main
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "A small and a large language model writing one answer together, on the CPU.",
        subcommands: [Generate.self, Chat.self, Serve.self, Tokenize.self, Perplexity.self, Bench.self, EvalCommand.self, Calibrate.self, TrainRelay.self, Models.self, DataSets.self])
}
