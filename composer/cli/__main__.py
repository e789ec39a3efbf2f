from composer.cli import entry

entry()
