mod cli_placeholder {}
