from chunfeng.cli import app

app(prog_name="chunfeng")
