def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'browser: drives JupyterLab in headless chromium (tests/browser; '
                   'deselect with -m "not browser")')
